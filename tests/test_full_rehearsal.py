"""The GPU path rehearsed on this CPU: every notebook, top to bottom, in the ``full`` profile.

On a Colab GPU every notebook resolves ``PROFILE = "auto"`` to ``full``: the real data sets and the published
set-ups.  Here each notebook runs that path on small copies of the real data sets, written by the tests in each
set's on-disk format (``tests/full_fixtures.py``), at ``COURSE_SCALE=0.0001``: iterations, epochs, batch sizes
and sample counts shrink, the data sets, networks and code paths stay those of ``full``
(``utils.config.course_scale``).  The Inception FID path runs with a stand-in network saved where the course
looks for ``inception-2015-12-05.pt``.  Checks of what training achieves say that they are skipped at this
scale (``utils.config.quality_checks``); every other check runs.

Then: nothing was written outside the data root, the checkpoint folder and the outputs folder (the temp folder
the notebooks were given stays empty, clean-fid's package folder is unchanged), and a missing data set stops
a full-profile notebook with one line that says what to do.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import cleanfid
import nbformat
import pytest
from full_fixtures import write_data_root
from inception_stand_in import save_stand_in

from utils.classifier import get_digit_classifier
from utils.config import REPO_ROOT
from utils.inception import INCEPTION_FILE

SCALE = "0.0001"
NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _package_files() -> dict[str, float]:
    folder = Path(cleanfid.__file__).parent
    return {str(p.relative_to(folder)): p.stat().st_mtime for p in folder.rglob("*") if "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory):
    base = tmp_path_factory.mktemp("rehearsal")
    data = write_data_root(base / "data", per_class=6)
    save_stand_in(data / INCEPTION_FILE)
    checkpoints, temp = base / "checkpoints", base / "tmp"
    temp.mkdir()
    # the mnist5k digit classifier, trained once where the smoke notebooks of `make test` look for it too
    get_digit_classifier("cpu", verbose=False, path=REPO_ROOT / "checkpoints" / "classifier" / "digit_classifier.pt")
    shutil.copytree(REPO_ROOT / "checkpoints" / "classifier", checkpoints / "classifier")
    env = {**os.environ, "COURSE_PROFILE": "full", "COURSE_SCALE": SCALE, "COURSE_DATA": str(data),
           "COURSE_CHECKPOINTS": str(checkpoints), "COURSE_OUTPUTS": str(base / "outputs"), "TMPDIR": str(temp)}
    return SimpleNamespace(env=env, outputs=base / "outputs", temp=temp, package=_package_files())


def _texts(notebook: nbformat.NotebookNode) -> str:
    """Every printed and displayed text of an executed notebook, joined."""
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append("".join(output.get("text", "")))
            for kind in ("text/plain", "text/markdown"):
                parts.append("".join(output.get("data", {}).get(kind, "")))
    return "\n".join(parts)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_full_on_real_format_data(rehearsal, path):
    done = subprocess.run([sys.executable, "-m", "utils.course", str(path)], env=rehearsal.env, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    text = _texts(nbformat.read(rehearsal.outputs / path.name, as_version=4))
    if path.stem != "00_datasets":
        assert f"rehearsal: COURSE_SCALE={SCALE}" in text  # the set-up cell says what this run is
        assert "skipped at rehearsal scale" in text  # checks of training are skipped out loud, never silently
    expected = {
        "00_datasets": ["| `cub` |", "| `oasis` |", "| `cifar10` |"],  # every set of chapters 01-06, found
        "01_gans": ["data set: cub", "FID (Inception-v3"],  # the Inception path, with the stand-in weights
        "02_autoencoders": ["data set: cifar10"],
        "03_vae": ["data set: cifar10", "food101:"],
        "04_latent_space": ["data set: mnist"],
        "05_cvae": ["data sets: mnist, fashion_mnist, kmnist", "| `mnist` | 1 |"],  # the per-label table on MNIST
        "06_vqvae_dcgan": ["data set: oasis"],
    }[path.stem]
    for words in expected:
        assert words in text, f"{path.name}: {words!r} not in its outputs"


def test_the_rehearsal_wrote_nothing_outside_its_folders(rehearsal):
    assert sorted(p.name for p in rehearsal.temp.iterdir()) == []  # the TMPDIR every notebook was given
    assert _package_files() == rehearsal.package  # no statistics or weights inside clean-fid's package


def test_a_missing_data_set_stops_every_full_notebook_with_one_line(tmp_path):
    chapters = [p for p in NOTEBOOKS if p.stem[:2] in ("02", "03", "04", "05", "06")]
    env = {**os.environ, "COURSE_PROFILE": "full", "COURSE_SCALE": SCALE, "COURSE_DATA": str(tmp_path / "empty"),
           "COURSE_CHECKPOINTS": str(tmp_path / "checkpoints"), "COURSE_OUTPUTS": str(tmp_path / "outputs"),
           "TMPDIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "utils.course", *map(str, chapters)], env=env, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 1
    for path in chapters:
        executed = nbformat.read(tmp_path / "outputs" / path.name, as_version=4)
        errors = [o for cell in executed.cells for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        assert len(errors) == 1 and errors[0]["ename"] == "DatasetUnavailableError", path.name
        shown = errors[0]["traceback"]
        assert len(shown) == 1 and "\n" not in shown[0], shown  # one line, no traceback
        assert "quick" in shown[0] and "is not available" in shown[0], shown[0]
    trained = [p.name for p in (tmp_path / "checkpoints").rglob("*.pt")]
    assert trained == [], f"trained without the data set: {trained}"
