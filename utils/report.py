"""A chapter's headline numbers, handed to ``make course``'s overview page.

A notebook ends its results section with ``key_numbers(fid_wgan=..., test_loss=...)``.
Under ``python -m utils.course`` each notebook's numbers land in
``outputs/<notebook>.numbers.json`` and ``outputs/index.html`` shows them beside
the run time; anywhere else (JupyterLab, Colab, nbval) the call only returns them.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

ENV_VAR = "COURSE_KEY_NUMBERS"


def _plain(value):
    """JSON-friendly scalars: tensors and numpy numbers become floats/ints, rounded to 4 significant digits."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, bool | int | str) or value is None:
        return value
    value = float(value)
    if not math.isfinite(value):
        return str(value)
    return float(f"{value:.4g}")


def key_numbers(**numbers) -> dict:
    """Record ``name=value`` pairs (merged with earlier calls of the same notebook run) and return them."""
    plain = {name: _plain(value) for name, value in numbers.items()}
    target = os.environ.get(ENV_VAR)
    if target:
        path = Path(target)
        recorded = json.loads(path.read_text()) if path.exists() else {}
        recorded.update(plain)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(recorded, indent=2))
        os.replace(tmp, path)
    return plain
