"""The README's results table: written from results/quick.json (the course run's numbers), never by hand."""

from __future__ import annotations

import json

import pytest
from test_course import tiny_notebook

from utils import course, results
from utils.config import REPO_ROOT

GANS = {"classifier_fid_vanilla": 23.17, "classifier_fid_lsgan": 19.0, "classifier_fid_wgan_gp": 22.51,
        "classifier_fid_wgan_gp_tuned": 6.163, "confident_vanilla": 0.602, "confident_lsgan": 0.607,
        "confident_wgan_gp": 0.592, "confident_wgan_gp_tuned": 0.758}


def test_the_readme_table_is_the_one_the_snapshot_gives():
    snapshot = results.read_snapshot(REPO_ROOT / "results" / "quick.json")
    table = results.readme_table(REPO_ROOT / "README.md")
    assert table == results.results_table(snapshot), (
        "README.md's results table differs from results/quick.json: the table is written by `make course` "
        "(utils/results.py), not by hand")
    assert results.NOT_RUN not in table  # the committed snapshot has every chapter's numbers
    assert json.loads((REPO_ROOT / "results" / "quick.json").read_text()) == snapshot


def cells(table: str) -> dict[str, list[str]]:
    rows = [line.strip("|").split(" | ") for line in table.splitlines()]
    return {row[0].strip(): [cell.strip() for cell in row[1:]] for row in rows}


def test_results_table_formats_the_numbers_and_says_not_run():
    numbers = {
        "01_gans": GANS,
        "02_autoencoders": {"ae_z16_test_ssim": 0.8038},  # most numbers missing
        "05_cvae": {"test_loss_vae_mnist5k": 165.66, "test_loss_cvae_mnist5k": "nan",  # a number recorded as text
                    "cvae_label_accuracy_min_mnist5k_T1": 0.94, "cvae_label_accuracy_min_mnist5k_T0.8": 0.966},
        "06_vqvae_dcgan": {"recon_ssim": 0.91634, "codebook_perplexity": 96.47, "codes_used": 128,
                           "best_sample_ssim": 0.9288, "confident_share_pixelcnn": 0.778, "confident_share_dcgan": 1},
        "99_other": {"x": 1},  # a notebook without a row is left out
    }
    table = results.results_table(numbers)
    lines = table.splitlines()
    assert lines[0] == results.HEADER == (
        "| chapter | ours (quick, mnist5k) | published (reference write-up) / best public, other set-up |")
    assert lines[1] == "|---|---|---|" and len(lines) == 2 + len(results.CHAPTERS)
    rows = cells(table)
    assert list(rows)[2:] == ["01 GANs", "02 autoencoders", "03 VAE, beta-VAE", "04 latent space", "05 CVAE",
                              "06 VQ-VAE"]
    assert rows["01 GANs"] == [
        "same budget (2,000 iterations each): classifier-FID vanilla 23.17, LSGAN 19.00, WGAN-GP 22.51; confident "
        "digits 60.2 % / 60.7 % / 59.2 %. WGAN-GP's own recipe (16,000 iterations, weight average): classifier-FID "
        "6.16, 75.8 % confident digits (target 70 %)",
        "Inception FID on CUB 32 px: 173 / 78 / 46; best public 60.97 / 55.23 / 32.41"]
    assert rows["02 autoencoders"][0].startswith("not run (no ae_z128_test_ssim, ae_z1024_test_ssim, ae_z16_test_sse")
    assert rows["03 VAE, beta-VAE"][0] == rows["04 latent space"][0] == "not run"
    assert rows["05 CVAE"][0] == ("test loss per image VAE 165.7, CVAE nan; every label >= 94 % of its CVAE samples "
                                  "classified as that label (97 % at T = 0.8)")
    assert rows["06 VQ-VAE"][0] == (
        "reconstruction SSIM 0.916 (whole test split); perplexity 96.5, 128 codes used; best prior-sample SSIM to "
        "a real image 0.929; confident digits: label-conditional PixelCNN 77.8 %, unconditional DCGAN 100.0 %")
    assert results.results_table({}).count("| not run |") == len(results.CHAPTERS)


def test_collect_and_the_snapshot(tmp_path):
    (tmp_path / "01_gans.numbers.json").write_text(json.dumps(GANS))
    (tmp_path / "05_cvae.numbers.json").write_text(json.dumps({"b": 2, "a": 1}))
    (tmp_path / "runs.json").write_text("{}")
    (tmp_path / "scratch.numbers.json").write_text("{}")  # not a course notebook's
    numbers = results.collect(tmp_path)
    assert numbers == {"01_gans": GANS, "05_cvae": {"a": 1, "b": 2}}
    path = results.write_snapshot(numbers, tmp_path / "results" / "quick.json")
    assert path.read_text() == json.dumps(numbers, indent=2, sort_keys=True) + "\n"
    assert path.read_text().index('"a"') < path.read_text().index('"b"')
    assert results.read_snapshot(path) == numbers


def readme(path, table="| old | table |"):
    path.write_text(f"# Title\n\ntext above\n{results.BEGIN_MARKER}\n\n{table}\n\n{results.END_MARKER}\n\ntext below\n")
    return path


def test_update_readme_replaces_only_the_text_between_the_markers(tmp_path):
    path = readme(tmp_path / "README.md")
    results.update_readme(path, "| new | table |\n|---|---|\n")
    assert path.read_text() == (f"# Title\n\ntext above\n{results.BEGIN_MARKER}\n\n| new | table |\n|---|---|\n\n"
                                f"{results.END_MARKER}\n\ntext below\n")
    assert results.readme_table(path) == "| new | table |\n|---|---|"
    results.update_readme(path, "| new | table |\n|---|---|")
    assert results.readme_table(path) == "| new | table |\n|---|---|"  # idempotent
    assert [p.name for p in tmp_path.iterdir()] == ["README.md"]  # no temporary file left


@pytest.mark.parametrize("text", ["# no markers\n\n| a | b |\n",
                                  f"{results.BEGIN_MARKER}\n| a |\n",
                                  f"{results.END_MARKER}\n| a |\n{results.BEGIN_MARKER}\n",
                                  f"{results.BEGIN_MARKER}\n{results.END_MARKER}\n{results.BEGIN_MARKER}\n"])
def test_update_readme_refuses_a_file_without_the_markers(tmp_path, text):
    path = tmp_path / "README.md"
    path.write_text(text)
    with pytest.raises(ValueError, match="results table"):
        results.update_readme(path, "| new |")
    assert path.read_text() == text


def key_numbers_cell(numbers: dict) -> str:
    return f"from utils.report import key_numbers\nkey_numbers(**{numbers!r})"


@pytest.fixture
def quick_course(tmp_path, monkeypatch):
    """A course of two fake notebooks under the quick profile, with a snapshot and README of its own."""
    monkeypatch.setenv("COURSE_PROFILE", "quick")
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    monkeypatch.setattr(course, "NOTEBOOK_DIR", notebooks)
    monkeypatch.setattr(results, "SNAPSHOT", tmp_path / "results" / "quick.json")
    monkeypatch.setattr(results, "README", readme(tmp_path / "README.md"))
    tiny_notebook(notebooks / "01_gans.ipynb", key_numbers_cell(GANS))
    tiny_notebook(notebooks / "05_cvae.ipynb", key_numbers_cell({"test_loss_vae_mnist5k": 165.7}))
    tiny_notebook(notebooks / "00_datasets.ipynb", "x = 1")  # records no numbers
    return tmp_path


def test_a_quick_course_run_writes_the_snapshot_and_the_readme_table(quick_course, capsys):
    out = quick_course / "out"
    assert course.main(["--out", str(out)]) == 0
    snapshot = results.read_snapshot(results.SNAPSHOT)
    assert snapshot == {"01_gans": GANS, "05_cvae": {"test_loss_vae_mnist5k": 165.7}}
    assert results.readme_table(results.README) == results.results_table(snapshot)
    assert "classifier-FID vanilla 23.17" in results.readme_table(results.README)
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"{results.SNAPSHOT} (every notebook's numbers) and the results table in {results.README} written")

    # a run of one notebook replaces its numbers and keeps the others'
    tiny_notebook(quick_course / "notebooks" / "05_cvae.ipynb", key_numbers_cell({"test_loss_cvae_mnist5k": 139.6}))
    assert course.main([str(quick_course / "notebooks" / "05_cvae.ipynb"), "--out", str(out)]) == 0
    assert results.read_snapshot(results.SNAPSHOT) == {"01_gans": GANS, "05_cvae": {"test_loss_cvae_mnist5k": 139.6}}
    assert "the numbers of 05_cvae merged" in capsys.readouterr().out
    assert results.readme_table(results.README) == results.results_table(results.read_snapshot(results.SNAPSHOT))


def test_a_failed_or_foreign_run_leaves_the_snapshot_alone(quick_course, tmp_path):
    results.write_snapshot({"01_gans": GANS}, results.SNAPSHOT)
    before = results.README.read_text()
    out = tmp_path / "out"
    out.mkdir()
    (out / "01_gans.numbers.json").write_text(json.dumps({"classifier_fid_vanilla": 1.0}))
    every = course.course_notebooks()
    failed = [{"notebook": p.name, "ok": p.stem != "01_gans"} for p in every]
    assert course.record_quick_results(every, out, failed) == (
        "results snapshot and README table kept as they were: 01_gans.ipynb failed")
    scratch = tiny_notebook(tmp_path / "01_gans.ipynb", "x = 1")  # not in the course's notebooks folder
    assert "notebooks from outside notebooks/" in course.record_quick_results(
        [scratch], out, [{"notebook": scratch.name, "ok": True}])
    assert results.read_snapshot(results.SNAPSHOT) == {"01_gans": GANS} and results.README.read_text() == before
