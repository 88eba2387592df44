"""Progress bars: ``tqdm.auto``'s, turned off where nobody watches them.

``make course`` (``utils.course``) executes notebooks into documents; a progress bar there is a live widget that
would be saved at whatever percentage it showed last ("0%", "98%").  It sets ``COURSE_PROGRESS=0`` for the
kernel, and every bar of the course is made here, so the saved notebooks carry none (the printed results and the
"about N min left" estimates stay).  In JupyterLab, Colab and the CLIs the bars show as usual.
"""

from __future__ import annotations

import os
from typing import Any

from tqdm.auto import tqdm as _auto_tqdm

PROGRESS_ENV_VAR = "COURSE_PROGRESS"


def progress_shown() -> bool:
    """False when ``COURSE_PROGRESS=0`` (executed notebooks), else True."""
    return os.environ.get(PROGRESS_ENV_VAR, "").strip() != "0"


def tqdm(*args: Any, **kwargs: Any) -> Any:
    """``tqdm.auto.tqdm(*args, **kwargs)``, disabled when :func:`progress_shown` is False."""
    if not progress_shown():
        kwargs["disable"] = True
    return _auto_tqdm(*args, **kwargs)
