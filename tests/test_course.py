"""The course runner's overview: key numbers from notebooks, runs.json merged by notebook, index.html."""

from __future__ import annotations

import json
import math
import os

import nbformat
import numpy as np
import pytest
import torch

from utils import course
from utils.report import ENV_VAR, key_numbers


def test_key_numbers_only_returns_outside_a_course_run(monkeypatch, tmp_path):
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.chdir(tmp_path)
    assert key_numbers(loss=torch.tensor(123.456789), steps=np.int64(7), ok=True, name="cvae") == {
        "loss": 123.5, "steps": 7, "ok": True, "name": "cvae"}
    assert list(tmp_path.iterdir()) == []


def test_key_numbers_merge_calls_into_the_runs_file(monkeypatch, tmp_path):
    target = tmp_path / "05_cvae.numbers.json"
    monkeypatch.setenv(ENV_VAR, str(target))
    key_numbers(fid=np.float32(12.3456), accuracy=0.98765)
    key_numbers(fid=10.0, bad=math.nan, steps=torch.tensor(3))  # a later call overwrites, others stay
    assert json.loads(target.read_text()) == {"fid": 10.0, "accuracy": 0.9877, "bad": "nan", "steps": 3}


def run(name: str, finished: str, **extra) -> dict:
    return {"notebook": name, "profile": "quick", "finished": finished, "seconds": 12.0, "ok": True, "error": None,
            "numbers": {}, **extra}


def test_merge_runs_keeps_every_notebook_and_the_newest_run_of_each():
    earlier = [run("01_gans.ipynb", "2026-01-01T10:00:00+00:00", seconds=300.0),
               run("05_cvae.ipynb", "2026-01-01T10:05:00+00:00", seconds=100.0)]
    latest = [run("05_cvae.ipynb", "2026-01-02T09:00:00+00:00", seconds=5.0, profile="smoke"),
              run("00_datasets.ipynb", "2026-01-02T09:01:00+00:00")]
    merged = course.merge_runs(earlier, latest)
    assert [r["notebook"] for r in merged] == ["00_datasets.ipynb", "01_gans.ipynb", "05_cvae.ipynb"]
    assert merged[2]["seconds"] == 5.0 and merged[2]["profile"] == "smoke"
    assert course.merge_runs(latest, earlier)[2]["seconds"] == 5.0  # an older run never replaces a newer one
    untimed = {"notebook": "x.ipynb", "seconds": 1}
    assert course.merge_runs([untimed], [run("x.ipynb", "2026-01-01")])[0]["seconds"] == 12


def test_write_index_merges_with_an_earlier_runs_file(tmp_path):
    # runs.json as written before runs carried their own profile and time
    (tmp_path / "runs.json").write_text(json.dumps({"profile": "quick", "notebooks": [
        {"notebook": "01_gans.ipynb", "seconds": 310.4, "ok": True, "error": None, "numbers": {"fid": 31.2}}]}))
    (tmp_path / "05_cvae.html").write_text("<html>")
    results = [run("05_cvae.ipynb", "2026-01-02T09:00:00+00:00", profile="smoke", numbers={"test_loss_cvae": 151.2}),
               run("06_vqvae.ipynb", "2026-01-02T09:02:00+00:00", ok=False, error="ValueError: <bad> & worse")]
    page = course.write_index(results, tmp_path).read_text()
    runs = json.loads((tmp_path / "runs.json").read_text())["notebooks"]
    assert [(r["notebook"], r["profile"]) for r in runs] == [
        ("01_gans.ipynb", "quick"), ("05_cvae.ipynb", "smoke"), ("06_vqvae.ipynb", "quick")]
    rows = page.split("<tr>")[2:]
    assert len(rows) == 3
    assert "01_gans.ipynb" in rows[0] and "href" not in rows[0] and "fid: <b>31.2</b>" in rows[0]  # no HTML: no link
    assert "<a href='05_cvae.html'>05_cvae.ipynb</a>" in rows[1] and "<td>smoke</td>" in rows[1]
    assert "2026-01-02 09:00:00 UTC" in rows[1] and "test_loss_cvae: <b>151.2</b>" in rows[1]
    assert "FAILED</b>: ValueError: &lt;bad&gt; &amp; worse" in rows[2]
    assert "3 notebooks, 1 failed" in page


def tiny_notebook(path, *sources):
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    nbformat.write(notebook, path)
    return path


def test_course_runs_notebooks_and_keeps_earlier_entries(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    good = tiny_notebook(tmp_path / "07_good.ipynb", "from utils.report import key_numbers",
                         "key_numbers(answer=6 * 7, ratio=2 / 3)\nprint('done')")
    bad = tiny_notebook(tmp_path / "08_bad.ipynb", "x = 1", "1 / 0", "print('never')")
    out = tmp_path / "out"
    assert course.main([str(good), "--out", str(out)]) == 0
    assert course.main([str(bad), "--out", str(out)]) == 1  # a later run of another notebook
    runs = {r["notebook"]: r for r in json.loads((out / "runs.json").read_text())["notebooks"]}
    assert set(runs) == {"07_good.ipynb", "08_bad.ipynb"}
    assert runs["07_good.ipynb"]["ok"] and runs["07_good.ipynb"]["numbers"] == {"answer": 42, "ratio": 0.6667}
    assert runs["07_good.ipynb"]["profile"] == "smoke"
    assert not runs["08_bad.ipynb"]["ok"] and runs["08_bad.ipynb"]["error"] == "ZeroDivisionError: division by zero"
    executed = nbformat.read(out / "07_good.ipynb", as_version=4)
    assert executed.cells[1].outputs[0]["text"] == "done\n"
    assert "done" in (out / "07_good.html").read_text()
    page = (out / "index.html").read_text()
    assert "<a href='07_good.html'>07_good.ipynb</a>" in page and "answer: <b>42</b>" in page
    assert "<a href='08_bad.html'>08_bad.ipynb</a>" in page and "ZeroDivisionError" in page
    assert "FAILED: ZeroDivisionError" in capsys.readouterr().out


def test_course_rejects_a_missing_notebook_with_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        course.main(["notebooks/99_missing.ipynb"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error == "python -m utils.course: error: no such notebook: notebooks/99_missing.ipynb\n"


def test_full_datasets_agree_with_every_family_config_for():
    import cvae
    import gan
    import vae
    import vae.latent
    import vqvae
    from utils.course import FULL_DATASETS, full_datasets

    trained = {
        "01": {gan.config_for("full").dataset},
        "02": {vae.config_for("full", model="ae").dataset},
        "03": {vae.config_for("full", model="vae").dataset, vae.config_for("full", model="natural-vae").dataset},
        "04": {vae.latent.config_for("full").dataset},
        "05": set(cvae.chapter_datasets("full")),
        "06": {vqvae.config_for("full").vqvae.dataset},
    }
    assert {chapter: set(names) for chapter, names in FULL_DATASETS.items()} == trained
    assert full_datasets(["1", "05"]) == ["cub", "mnist", "fashion_mnist", "kmnist"]
    assert full_datasets() == ["cub", "cifar10", "food101", "mnist", "fashion_mnist", "kmnist", "oasis"]
    with pytest.raises(ValueError, match="unknown chapter 07"):
        full_datasets(["07"])


def test_key_numbers_show_as_a_table_not_a_raw_dict():
    shown = key_numbers(fid_wgan_gp=6.163, confident=0.758)
    assert shown == {"fid_wgan_gp": 6.163, "confident": 0.758}
    assert "| `fid_wgan_gp` | 6.163 |" in shown._repr_markdown_()


def test_executed_notebooks_have_no_progress_bars(tmp_path, monkeypatch):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import os\nfrom utils.progress import tqdm\n"
        "print(os.environ.get('COURSE_PROGRESS'), tqdm(range(3)).disable)")])
    source = tmp_path / "01_bars.ipynb"
    nbformat.write(notebook, source)
    monkeypatch.delenv("COURSE_PROGRESS", raising=False)
    monkeypatch.setenv("PYTHONPATH", str(course.REPO_ROOT))
    result = course.execute_notebook(source, tmp_path / "out", profile="smoke")
    executed = nbformat.read(tmp_path / "out" / "01_bars.ipynb", as_version=4)
    printed = "".join(o.get("text", "") for o in executed.cells[0].outputs if o.get("name") == "stdout")
    assert result["ok"] and printed == "0 True\n", executed.cells[0].outputs
    assert "COURSE_PROGRESS" not in os.environ  # the course's own process keeps its bars
