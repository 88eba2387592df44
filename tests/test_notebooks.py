"""Every notebook opens the same way in JupyterLab and Colab: its own badge, the one bootstrap cell, clean storage.

The bootstrap's text lives in ``tools/sync_notebooks.py``; ``python tools/sync_notebooks.py`` fixes
what these tests find. The bootstrap itself runs here twice: inside the checkout (JupyterLab) and on a
simulated fresh Colab runtime (clone, pip and the widget manager recorded, nothing downloaded).
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest

from utils.config import REPO_ROOT

spec = importlib.util.spec_from_file_location("sync_notebooks", REPO_ROOT / "tools" / "sync_notebooks.py")
sync_notebooks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sync_notebooks)

NOTEBOOKS = sync_notebooks.course_notebooks()
BADGE_LINK = re.compile(r"\]\((https://colab\.research\.google\.com/github/[^)]*)\)")


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 2


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_badge_bootstrap_parameters_and_no_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    title = notebook.cells[0]
    assert title.cell_type == "markdown" and title.source.startswith("# ")
    links = BADGE_LINK.findall(title.source)
    assert links == [f"https://colab.research.google.com/github/deep-generative-course/deep-generative-course/blob/"
                     f"main/notebooks/{path.name}"], f"{path.name}: Colab badge {links}"
    assert notebook.cells[1].cell_type == "code" and notebook.cells[1].source == sync_notebooks.BOOTSTRAP, (
        f"{path.name}: the second cell is not the bootstrap; run `python tools/sync_notebooks.py`")
    tagged = [i for i, cell in enumerate(notebook.cells) if sync_notebooks.is_parameters_cell(cell)]
    assert len(tagged) == 1 and notebook.cells[tagged[0]].cell_type == "code", f"{path.name}: parameters cells {tagged}"
    stored = [i for i, cell in enumerate(notebook.cells)
              if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)]
    assert not stored, f"{path.name}: cells {stored} hold outputs or execution counts"


def stale_copy(tmp_path: Path, name: str = "07_example.ipynb") -> Path:
    """A notebook the way chapters were written before: a 4-line bootstrap, no badge, stored outputs."""
    notebook = nbformat.v4.new_notebook()
    old_bootstrap = "import os, sys\nfrom pathlib import Path\nROOT = ...\nsys.path.insert(0, str(ROOT))"
    result = nbformat.v4.new_output("execute_result", {"text/plain": "2"}, execution_count=3)
    notebook.cells = [
        nbformat.v4.new_markdown_cell("# 07 · Example\n\nWhat this chapter shows."),
        nbformat.v4.new_code_cell(old_bootstrap),
        nbformat.v4.new_code_cell('PROFILE = "auto"', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("1 + 1", execution_count=3, outputs=[result]),
    ]
    path = tmp_path / name
    nbformat.write(notebook, path)
    return path


def test_sync_fixes_a_stale_notebook_and_is_idempotent(tmp_path, capsys):
    path = stale_copy(tmp_path)
    assert sync_notebooks.main(["--check", str(path)]) == 1
    assert "would change 1 of 1" in capsys.readouterr().out
    assert sync_notebooks.main([str(path)]) == 0
    first = path.read_text()
    assert sync_notebooks.main([str(path)]) == 0 and path.read_text() == first
    assert sync_notebooks.main(["--check", str(path)]) == 0

    notebook = nbformat.read(path, as_version=4)
    assert [c.cell_type for c in notebook.cells] == ["markdown", "code", "code", "code"]
    assert notebook.cells[0].source.splitlines()[:3] == ["# 07 · Example", "", sync_notebooks.colab_badge(path.name)]
    assert notebook.cells[0].source.endswith("What this chapter shows.")
    assert notebook.cells[1].source == sync_notebooks.BOOTSTRAP
    assert notebook.cells[3].outputs == [] and notebook.cells[3].execution_count is None


def test_sync_inserts_a_missing_bootstrap_and_renames_a_copied_badge(tmp_path):
    path = stale_copy(tmp_path, "08_other.ipynb")
    notebook = nbformat.read(path, as_version=4)
    del notebook.cells[1]
    notebook.cells[0].source = "# 08\n\n" + sync_notebooks.colab_badge("05_cvae.ipynb") + "\n\nText."
    assert sync_notebooks.sync(notebook, path.name)
    assert notebook.cells[0].source == "# 08\n\n" + sync_notebooks.colab_badge("08_other.ipynb") + "\n\nText."
    assert notebook.cells[1].source == sync_notebooks.BOOTSTRAP
    assert sync_notebooks.is_parameters_cell(notebook.cells[2])
    assert not sync_notebooks.sync(notebook, path.name)


def test_sync_rejects_a_bad_path_with_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        sync_notebooks.main(["notebooks/no_such.ipynb"])
    assert exit_info.value.code == 2
    assert "no such notebook: notebooks/no_such.ipynb" in capsys.readouterr().err


def run_bootstrap(monkeypatch) -> dict:
    monkeypatch.setattr(sys, "path", list(sys.path))
    namespace: dict = {}
    exec(compile(sync_notebooks.BOOTSTRAP, "bootstrap", "exec"), namespace)
    return namespace


def test_bootstrap_in_a_checkout_finds_the_root_and_runs_nothing(monkeypatch):
    monkeypatch.chdir(REPO_ROOT / "notebooks")
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail(f"the bootstrap ran {a}"))
    namespace = run_bootstrap(monkeypatch)
    assert namespace["ROOT"] == REPO_ROOT and sys.path[0] == str(REPO_ROOT)
    assert not namespace["IN_COLAB"]


def test_bootstrap_outside_a_checkout_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    with pytest.raises(RuntimeError, match="inside a checkout of https://github.com/deep-generative-course"):
        run_bootstrap(monkeypatch)


def test_bootstrap_on_a_fresh_colab_runtime(monkeypatch, tmp_path):
    """Clone into /content-like cwd, pip install under constraints of what Colab has, widget manager on."""
    commands, widget_manager = [], []
    google, colab = types.ModuleType("google"), types.ModuleType("google.colab")
    colab.output = types.SimpleNamespace(enable_custom_widget_manager=lambda: widget_manager.append(True))
    google.colab = colab
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", colab)

    def fake_run(command, **kwargs):
        commands.append(command)
        if command[:2] == ["git", "clone"]:
            clone = Path(command[-1])
            (clone / "utils").mkdir(parents=True)
            (clone / "utils" / "config.py").write_text("")
            (clone / "notebooks").mkdir()
        return subprocess.CompletedProcess(command, 0, stdout="torch==2.5.1+cu121\nnumpy==2.0.2\n")

    monkeypatch.setattr(subprocess, "run", fake_run)
    monkeypatch.chdir(tmp_path)
    namespace = run_bootstrap(monkeypatch)
    clone = tmp_path / "deep-generative-course"
    assert commands[0] == ["git", "clone", "--depth", "1", sync_notebooks.REPO_URL, str(clone)]
    assert commands[1] == [sys.executable, "-m", "pip", "list", "--format=freeze"]
    assert commands[2] == [sys.executable, "-m", "pip", "install", "-q", "-c", str(clone / "colab-constraints.txt"),
                           "-r", str(clone / "requirements-colab.txt"), "-e", str(clone)]
    assert "torch==2.5.1+cu121" in (clone / "colab-constraints.txt").read_text()  # Colab's torch is pinned
    assert namespace["ROOT"] == clone and sys.path[0] == str(clone) and Path.cwd() == clone / "notebooks"
    assert widget_manager == [True]

    commands.clear()  # run again (the notebook folder is now the cwd): no second clone, no second install
    namespace = run_bootstrap(monkeypatch)
    assert commands == [] and namespace["ROOT"] == clone and widget_manager == [True, True]


def requirement_names(path: Path) -> set[str]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return {re.split(r"[<>=!~\[; ]", line)[0].lower() for line in lines if line}


def test_colab_requirements_leave_colabs_own_stack_alone():
    colab = requirement_names(REPO_ROOT / "requirements-colab.txt")
    assert colab <= requirement_names(REPO_ROOT / "requirements.txt")
    assert not colab & {"torch", "torchvision", "numpy", "ipywidgets", "jupyterlab", "ipykernel", "nbval", "pytest",
                        "ruff", "playwright", "papermill"}
    assert {"clean-fid", "mlxtend"} <= colab  # not on a Colab runtime by default


def test_sync_names_a_notebook_without_title_and_still_does_the_others(tmp_path, capsys):
    untitled = stale_copy(tmp_path, "09_untitled.ipynb")
    notebook = nbformat.read(untitled, as_version=4)
    del notebook.cells[0]
    nbformat.write(notebook, untitled)
    good = stale_copy(tmp_path, "10_good.ipynb")
    assert sync_notebooks.main([str(untitled), str(good)]) == 2
    assert capsys.readouterr().err == "error: 09_untitled.ipynb: the first cell must be the markdown title cell\n"
    assert nbformat.read(good, as_version=4).cells[1].source == sync_notebooks.BOOTSTRAP
    assert "Open In Colab" not in untitled.read_text()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_cells_are_short_and_the_write_ups_are_not_called_seeds(path):
    """Short cells (at most 30 lines of code), and "seed" only for a random seed: the documents a chapter grew
    from are "the reference write-up" (REFERENCES.md), never "the seed"."""
    notebook = nbformat.read(path, as_version=4)
    long = [i for i, cell in enumerate(notebook.cells)
            if cell.cell_type == "code" and i > 1 and len(cell.source.splitlines()) > 30]  # the bootstrap is synced
    assert not long, f"{path.name}: code cells over 30 lines: {long}"
    for i, cell in enumerate(notebook.cells):
        prose = re.sub(r"`[^`]*`", "", cell.source) if cell.cell_type == "markdown" else ""
        for match in re.finditer(r"\bseeds?\b", prose, flags=re.IGNORECASE):
            before = prose[max(0, match.start() - 30):match.start()].lower()
            assert re.search(r"(random|fixed|same|its own|different|per-sample)[\s-]+$", before), (
                f"{path.name} cell {i}: {prose[max(0, match.start() - 60):match.end() + 40]!r}")
