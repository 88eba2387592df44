"""Writing files so that an interruption never leaves half a file behind.

Every file the course writes (checkpoints, run metrics, sample arrays, data-set caches, the digit
classifier, downloaded weights, resized images, a notebook's key numbers) goes through
:func:`atomic_write`: the bytes go to a temporary file in the same folder, which replaces the target
with ``os.replace`` (atomic on one file system) only once it is complete.  Killed mid-write, the
previous file is still there, whole.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_write(path: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write to; it replaces ``path`` when the block ends without error.

    The folder is created if needed; on an error (or Ctrl-C) the temporary file is removed and ``path``
    is left as it was.  ``suffix`` is the temporary file's ending, for writers that add their own
    (``numpy.savez`` appends ``.npz`` to a name without it).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
