"""Give every course notebook its Colab badge and the one bootstrap cell, and strip stored outputs.

The bootstrap's text lives here and nowhere else. Each notebook gets:

* in its first (title) cell, an "Open in Colab" badge pointing at its own file;
* as its second cell, ``BOOTSTRAP``: in JupyterLab (or anywhere inside a checkout) it finds the
  repository root and puts it on ``sys.path``; on a fresh Colab runtime it first clones ``REPO_URL``,
  pip-installs ``requirements-colab.txt`` and the helper packages under a constraints file that pins
  every package the runtime already has (so Colab's torch, torchvision, numpy and ipywidgets are never
  reinstalled or upgraded), moves into ``notebooks/``, and turns on Colab's custom widget manager;
* no outputs or execution counts (notebooks are stored clean).

``python tools/sync_notebooks.py [NOTEBOOK ...]`` rewrites the notebooks in place (default: every
``notebooks/NN_*.ipynb``) and is idempotent; ``--check`` changes nothing and exits 1 naming the
notebooks that would change. A notebook it cannot fix (no markdown title cell first) is named on
stderr, the others are still done, and the exit status is 2.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path

import nbformat

from utils.cli import CourseArgumentParser, run_cli

REPO_URL = "https://github.com/deep-generative-course/deep-generative-course"
BRANCH = "main"
NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"

BOOTSTRAP = '''\
# Bootstrap: put the course's folder on sys.path; on a fresh Colab runtime fetch the course first.
import os, sys
from pathlib import Path

REPO_URL = "@REPO_URL@"
IN_COLAB = "google.colab" in sys.modules
ROOT = next((p for p in [Path.cwd(), *Path.cwd().parents] if (p / "utils" / "config.py").exists()), None)
if ROOT is None and IN_COLAB:  # clone; pip adds what Colab lacks and changes nothing it has (torch stays)
    import subprocess
    ROOT = Path.cwd() / Path(REPO_URL).name
    if not ROOT.exists():
        subprocess.run(["git", "clone", "--depth", "1", REPO_URL, str(ROOT)], check=True)
    pip = [sys.executable, "-m", "pip"]
    keep = subprocess.run([*pip, "list", "--format=freeze"], capture_output=True, text=True, check=True).stdout
    (ROOT / "colab-constraints.txt").write_text(keep)
    subprocess.run([*pip, "install", "-q", "-c", str(ROOT / "colab-constraints.txt"),
                    "-r", str(ROOT / "requirements-colab.txt"), "-e", str(ROOT)], check=True)
    os.chdir(ROOT / "notebooks")
if IN_COLAB:  # sliders and pictures are ipywidgets: Colab renders them with its custom widget manager
    from google.colab import output
    output.enable_custom_widget_manager()
if ROOT is None:
    raise RuntimeError(f"open this notebook inside a checkout of {REPO_URL} or on Colab")
sys.path.insert(0, str(ROOT))'''.replace("@REPO_URL@", REPO_URL)

BADGE_PATTERN = re.compile(r"\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)")


def colab_badge(notebook_name: str) -> str:
    slug = REPO_URL.removeprefix("https://github.com/")
    return ("[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
            f"(https://colab.research.google.com/github/{slug}/blob/{BRANCH}/notebooks/{notebook_name})")


def is_parameters_cell(cell) -> bool:
    return "parameters" in cell.get("metadata", {}).get("tags", [])


def sync(notebook, name: str) -> bool:
    """Badge, bootstrap and clean outputs for ``notebook`` (file name ``name``); True when anything changed."""
    before = nbformat.writes(notebook)
    title = notebook.cells[0]
    if title.cell_type != "markdown":
        raise ValueError(f"{name}: the first cell must be the markdown title cell")
    badge = colab_badge(name)
    if BADGE_PATTERN.search(title.source):
        title.source = BADGE_PATTERN.sub(lambda _: badge, title.source, count=1)
    else:  # right under the heading line
        heading, _, rest = title.source.partition("\n")
        title.source = "\n\n".join(part for part in (heading, badge, rest.strip()) if part)
    second = notebook.cells[1] if len(notebook.cells) > 1 else None
    if second and second.cell_type == "code" and "sys.path" in second.source and not is_parameters_cell(second):
        second.source = BOOTSTRAP
    else:
        notebook.cells.insert(1, nbformat.v4.new_code_cell(BOOTSTRAP))
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nbformat.writes(notebook) != before


def course_notebooks() -> list[Path]:
    return sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = CourseArgumentParser(prog="tools/sync_notebooks.py", description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebooks/NN_*.ipynb")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a notebook would change")
    args = parser.parse_args(argv)
    paths = args.notebooks or course_notebooks()
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        parser.error(f"no such notebook: {', '.join(missing)}")
    stale, broken = [], []
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        try:
            changed = sync(notebook, path.name)
        except ValueError as error:  # e.g. no title cell: said, and the other notebooks are still done
            print(f"error: {error}", file=sys.stderr)
            broken.append(path)
            continue
        if changed:
            stale.append(path)
            if not args.check:
                nbformat.write(notebook, path)
    verb = "would change" if args.check else "rewrote"
    print(f"{verb} {len(stale)} of {len(paths)} notebooks" + "".join(f"\n  {p}" for p in stale))
    return 2 if broken else 1 if args.check and stale else 0


if __name__ == "__main__":
    run_cli(main)
