"""Run the course: execute every notebook top to bottom, write executed copies and HTML.

``python -m utils.course [NOTEBOOK ...]`` (what ``make course`` calls) runs the
notebooks in ``notebooks/`` in order under ``$COURSE_PROFILE`` and writes, for
each, ``outputs/<name>.ipynb`` and ``outputs/<name>.html``, then
``outputs/index.html`` linking them with their profile, finishing time, run time
and key numbers (``utils.report.key_numbers``).  ``outputs/runs.json`` keeps one
entry per notebook, the newest: running a few notebooks updates their rows and
keeps the others.  A failing notebook is still written (up to the failing cell)
and makes the exit status non-zero.

After a ``quick`` run in which every notebook succeeded, the notebooks' numbers go to the committed
snapshot ``results/quick.json`` and the README's results table is rewritten from it (``utils.results``):
a run of every notebook replaces the snapshot, a run of some (``make course NOTEBOOKS=...``) replaces
only their numbers in it, and a run of a notebook from outside ``notebooks/`` leaves both alone.
"""

from __future__ import annotations

import html
import json
import os
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import nbformat
from nbclient.exceptions import CellExecutionError
from nbconvert import HTMLExporter
from nbconvert.preprocessors import ExecutePreprocessor

from utils import results as readme_results
from utils.cli import CourseArgumentParser
from utils.config import REPO_ROOT, outputs_dir, resolve_profile
from utils.progress import PROGRESS_ENV_VAR
from utils.report import ENV_VAR

NOTEBOOK_DIR = REPO_ROOT / "notebooks"


# what each chapter trains on in the full profile (each family's config_for says it; tests/test_course.py checks
# that this agrees), so that notebook 00 downloads only what the chosen chapters need
FULL_DATASETS = {
    "01": ("cub",),
    "02": ("cifar10",),
    "03": ("cifar10", "food101"),  # COCO instead of Food-101 also does for 03
    "04": ("mnist",),
    "05": ("mnist", "fashion_mnist", "kmnist"),
    "06": ("oasis",),
}


def full_datasets(chapters: Sequence[str] | None = None) -> list[str]:
    """The data sets the full profile of ``chapters`` (``"01"`` ... ``"06"``; ``None``: all) trains on, in order.

    ``ValueError`` for a chapter the course does not have.
    """
    chosen = list(FULL_DATASETS) if chapters is None else [str(c).zfill(2) for c in chapters]
    unknown = [c for c in chosen if c not in FULL_DATASETS]
    if unknown:
        raise ValueError(f"unknown chapter {', '.join(unknown)}; the chapters are {', '.join(FULL_DATASETS)}")
    return list(dict.fromkeys(name for chapter in chosen for name in FULL_DATASETS[chapter]))


def course_notebooks() -> list[Path]:
    return sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


def execute_notebook(source: Path, out_dir: Path, timeout: int | None = None, profile: str | None = None) -> dict:
    """Execute ``source`` in a fresh kernel; write the executed notebook and its HTML to ``out_dir``.

    Returns the run's entry for ``runs.json``: notebook, profile, finished (UTC, ISO 8601), seconds,
    ok, error (the failing cell's last error line) and the key numbers the notebook recorded.
    """
    notebook = nbformat.read(source, as_version=4)
    runner = ExecutePreprocessor(timeout=timeout, kernel_name="python3")
    out_dir.mkdir(parents=True, exist_ok=True)
    numbers_file = out_dir / f"{source.stem}.numbers.json"
    numbers_file.unlink(missing_ok=True)
    os.environ[ENV_VAR] = str(numbers_file.resolve())  # the kernel inherits it; utils.report.key_numbers writes there
    # an executed notebook is a document: a progress bar is a live widget that would be saved at a stale percentage
    progress_setting = os.environ.get(PROGRESS_ENV_VAR)
    os.environ[PROGRESS_ENV_VAR] = "0"
    started = time.perf_counter()
    error = None
    try:
        runner.preprocess(notebook, {"metadata": {"path": str(source.parent)}})
    except CellExecutionError as failure:
        error = f"{failure.ename}: {failure.evalue}" if failure.ename else "a cell failed"
    finally:
        os.environ.pop(ENV_VAR, None)
        if progress_setting is None:
            os.environ.pop(PROGRESS_ENV_VAR, None)
        else:
            os.environ[PROGRESS_ENV_VAR] = progress_setting
    seconds = time.perf_counter() - started
    numbers = json.loads(numbers_file.read_text()) if numbers_file.exists() else {}
    nbformat.write(notebook, out_dir / source.name)
    body, _ = HTMLExporter().from_notebook_node(notebook)
    (out_dir / f"{source.stem}.html").write_text(body, encoding="utf-8")
    return {"notebook": source.name, "profile": profile or resolve_profile(),
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"), "seconds": round(seconds, 1),
            "ok": error is None, "error": error, "numbers": numbers}


def _numbers_cell(numbers: dict) -> str:
    return "<br>".join(f"{html.escape(str(k))}: <b>{html.escape(str(v))}</b>" for k, v in numbers.items())


def merge_runs(earlier: list[dict], latest: list[dict]) -> list[dict]:
    """One entry per notebook, the one that finished last (entries without a time count as oldest), by name."""
    newest: dict[str, dict] = {}
    for run in [*earlier, *latest]:
        kept = newest.get(run["notebook"])
        if kept is None or run.get("finished", "") >= kept.get("finished", ""):
            newest[run["notebook"]] = run
    return [newest[name] for name in sorted(newest)]


def read_runs(out_dir: Path) -> list[dict]:
    """The entries of ``out_dir/runs.json`` (none when it is missing or unreadable)."""
    try:
        recorded = json.loads((out_dir / "runs.json").read_text())
    except (OSError, ValueError):
        return []
    default_profile = recorded.get("profile", "?")  # files written before runs carried their own profile
    return [{"profile": default_profile, **run} for run in recorded.get("notebooks", [])]


def _index_row(run: dict, out_dir: Path) -> str:
    name = html.escape(run["notebook"])
    page = f"{Path(run['notebook']).stem}.html"
    link = f"<a href='{html.escape(page)}'>{name}</a>" if (out_dir / page).exists() else name
    status = "ok" if run["ok"] else "<b>FAILED</b>: " + html.escape(run.get("error") or "")
    finished = html.escape(run.get("finished", "?").replace("T", " ").replace("+00:00", " UTC"))
    return (f"<tr><td>{link}</td><td>{html.escape(run.get('profile', '?'))}</td><td>{finished}</td>"
            f"<td>{run['seconds']:.0f} s</td><td>{status}</td><td>{_numbers_cell(run.get('numbers') or {})}</td></tr>")


def write_index(results: list[dict], out_dir: Path) -> Path:
    """Merge ``results`` into ``out_dir/runs.json`` and write ``out_dir/index.html`` from every recorded run."""
    runs = merge_runs(read_runs(out_dir), results)
    rows = "\n".join(_index_row(run, out_dir) for run in runs)
    failed = sum(not run["ok"] for run in runs)
    page = (
        "<!doctype html><meta charset='utf-8'><title>Deep generative models course: executed notebooks</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:.3em 1em;text-align:left;vertical-align:top}"
        "tr:nth-child(even){background:#f4f4f4}</style>"
        f"<h1>Executed notebooks</h1><p>{len(runs)} notebooks, {failed} failed; the newest run of each "
        f"(<code>make course</code>, profile set by <code>PROFILE</code>). Written "
        f"{datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M')} UTC.</p>"
        "<table><tr><th>notebook</th><th>profile</th><th>finished</th><th>run time</th><th>status</th>"
        f"<th>key numbers</th></tr>\n{rows}\n</table>"
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    index = out_dir / "index.html"
    index.write_text(page, encoding="utf-8")
    (out_dir / "runs.json").write_text(json.dumps({"notebooks": runs}, indent=2))
    return index


def record_quick_results(paths: Sequence[Path], out_dir: Path, results: list[dict]) -> str:
    """After a ``quick`` run: the snapshot and the README table from ``out_dir``'s numbers; says what it did."""
    failed = [r["notebook"] for r in results if not r["ok"]]
    every, ran = {p.resolve() for p in course_notebooks()}, {p.resolve() for p in paths}
    if failed or not ran <= every:
        why = f"{', '.join(failed)} failed" if failed else "notebooks from outside notebooks/ were run"
        return f"results snapshot and README table kept as they were: {why}"
    subset = None if ran == every else sorted(p.stem for p in ran)
    readme_results.record(out_dir, subset)
    which = "every notebook's numbers" if subset is None else f"the numbers of {', '.join(subset)} merged"
    return f"{readme_results.SNAPSHOT} ({which}) and the results table in {readme_results.README} written"


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
        result = execute_notebook(path.resolve(), out_dir, profile=profile)
        status = "ok" if result["ok"] else f"FAILED: {result['error']}"
        print(f"  {result['seconds']:.0f} s, {status}", flush=True)
        results.append(result)
    index = write_index(results, out_dir)
    print(f"executed notebooks and HTML in {out_dir}/; overview: {index}")
    if profile == "quick":
        print(record_quick_results(paths, out_dir, results))
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
