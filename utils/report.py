"""A chapter's headline numbers, handed to ``make course``'s overview page.

A notebook ends its results section with ``key_numbers(fid_wgan=..., test_loss=...)``;
its tables are ``display(Markdown(markdown_table(header, rows)))``.
Under ``python -m utils.course`` each notebook's numbers land in
``outputs/<notebook>.numbers.json`` and ``outputs/index.html`` shows them beside
the run time; anywhere else (JupyterLab, Colab, nbval) the call only returns them.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

from utils.files import atomic_write

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


class KeyNumbers(dict):
    """The numbers a notebook recorded: a dict that a notebook shows as a small table, not as a raw dict."""

    def _repr_markdown_(self) -> str:
        rows = [[f"`{name}`", value] for name, value in self.items()]
        return "Key numbers of this run (the course's results):\n\n" + markdown_table(["name", "value"], rows)


def key_numbers(**numbers) -> KeyNumbers:
    """Record ``name=value`` pairs (merged with earlier calls of the same notebook run) and return them."""
    plain = KeyNumbers({name: _plain(value) for name, value in numbers.items()})
    target = os.environ.get(ENV_VAR)
    if target:
        path = Path(target)
        recorded = json.loads(path.read_text()) if path.exists() else {}
        recorded.update(plain)
        with atomic_write(path) as temporary:
            temporary.write_text(json.dumps(recorded, indent=2))
    return plain


def markdown_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A Markdown table from a header row and data rows; cells are written with ``str``."""
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return "\n".join(lines)
