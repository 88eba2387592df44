"""Run the course: execute every notebook top to bottom, write executed copies and HTML.

``python -m utils.course [NOTEBOOK ...]`` (what ``make course`` calls) runs the
notebooks in ``notebooks/`` in order under ``$COURSE_PROFILE`` and writes, for
each, ``outputs/<name>.ipynb`` and ``outputs/<name>.html``, then
``outputs/index.html`` linking them with their run times.  A failing notebook is
still written (up to the failing cell) and makes the exit status non-zero.
"""

from __future__ import annotations

import html
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import nbformat
from nbclient.exceptions import CellExecutionError
from nbconvert import HTMLExporter
from nbconvert.preprocessors import ExecutePreprocessor

from utils.cli import CourseArgumentParser
from utils.config import REPO_ROOT, outputs_dir, resolve_profile
from utils.report import ENV_VAR

NOTEBOOK_DIR = REPO_ROOT / "notebooks"


def course_notebooks() -> list[Path]:
    return sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


def execute_notebook(source: Path, out_dir: Path, timeout: int | None = None) -> dict:
    """Execute ``source`` in a fresh kernel; write the executed notebook and its HTML to ``out_dir``."""
    notebook = nbformat.read(source, as_version=4)
    runner = ExecutePreprocessor(timeout=timeout, kernel_name="python3")
    out_dir.mkdir(parents=True, exist_ok=True)
    numbers_file = out_dir / f"{source.stem}.numbers.json"
    numbers_file.unlink(missing_ok=True)
    os.environ[ENV_VAR] = str(numbers_file.resolve())  # the kernel inherits it; utils.report.key_numbers writes there
    started = time.perf_counter()
    error = None
    try:
        runner.preprocess(notebook, {"metadata": {"path": str(source.parent)}})
    except CellExecutionError as failure:
        error = str(failure).strip().splitlines()[-1] if str(failure).strip() else "a cell failed"
    finally:
        os.environ.pop(ENV_VAR, None)
    seconds = time.perf_counter() - started
    numbers = json.loads(numbers_file.read_text()) if numbers_file.exists() else {}
    nbformat.write(notebook, out_dir / source.name)
    body, _ = HTMLExporter().from_notebook_node(notebook)
    (out_dir / f"{source.stem}.html").write_text(body, encoding="utf-8")
    return {"notebook": source.name, "seconds": round(seconds, 1), "ok": error is None, "error": error,
            "numbers": numbers}


def _numbers_cell(numbers: dict) -> str:
    return "<br>".join(f"{html.escape(str(k))}: <b>{html.escape(str(v))}</b>" for k, v in numbers.items())


def write_index(results: list[dict], out_dir: Path, profile: str) -> Path:
    rows = "\n".join(
        f"<tr><td><a href='{html.escape(Path(r['notebook']).stem)}.html'>{html.escape(r['notebook'])}</a></td>"
        f"<td>{r['seconds']:.0f} s</td><td>{'ok' if r['ok'] else 'FAILED: ' + html.escape(r['error'] or '')}</td>"
        f"<td>{_numbers_cell(r.get('numbers') or {})}</td></tr>"
        for r in results
    )
    page = (
        "<!doctype html><meta charset='utf-8'><title>Deep generative models course: executed notebooks</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:.3em 1em;text-align:left}</style>"
        f"<h1>Executed notebooks</h1><p>Profile: <b>{html.escape(profile)}</b>; "
        f"written {time.strftime('%Y-%m-%d %H:%M')}.</p>"
        f"<table><tr><th>notebook</th><th>run time</th><th>status</th><th>key numbers</th></tr>{rows}</table>"
    )
    index = out_dir / "index.html"
    index.write_text(page, encoding="utf-8")
    (out_dir / "runs.json").write_text(json.dumps({"profile": profile, "notebooks": results}, indent=2))
    return index


def main(argv: Sequence[str] | None = None) -> int:
    parser = CourseArgumentParser(prog="python -m utils.course", description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="notebook files (default: every notebooks/NN_*.ipynb)")
    parser.add_argument("--out", default=None, help="output folder (default: outputs/)")
    args = parser.parse_args(argv)
    paths = [Path(p) for p in args.notebooks] or course_notebooks()
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        parser.error(f"no such notebook: {', '.join(missing)}")
    profile = resolve_profile()
    out_dir = Path(args.out) if args.out else outputs_dir()
    results = []
    for path in paths:
        print(f"running {path.name} (profile {profile}) ...", flush=True)
        result = execute_notebook(path.resolve(), out_dir)
        status = "ok" if result["ok"] else f"FAILED: {result['error']}"
        print(f"  {result['seconds']:.0f} s, {status}", flush=True)
        results.append(result)
    index = write_index(results, out_dir, profile)
    print(f"executed notebooks and HTML in {out_dir}/; overview: {index}")
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
