"""``python datasets/download.py`` and ``python datasets/resize_dataset.py`` as a user runs them.

The download CLI runs in real subprocesses, started in parallel (each pays the torch
import once); the resize script runs in this process through ``runpy``, as ``__main__``.
"""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from image_fixtures import CUB_BAD, CUB_GOOD, make_cub_images
from PIL import Image

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    commands = {
        "unknown": ["no_such_set"],
        "mnist5k": ["mnist5k", "--root", str(tmp / "root")],
        "offline": ["cifar10", "--root", str(tmp / "empty_root")],
    }
    env = {**os.environ, "COURSE_DATA": str(tmp / "data"), "PYTHONWARNINGS": "ignore"}
    started = {
        name: subprocess.Popen(
            [sys.executable, "datasets/download.py", *args],
            cwd=REPO,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for name, args in commands.items()
    }
    results = {}
    for name, process in started.items():
        stdout, stderr = process.communicate(timeout=300)
        results[name] = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    return results


def run_script(script: str, *args: str, monkeypatch, capsys) -> tuple[int, str, str]:
    """Run ``python <script> <args>`` in this process; return (exit status, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", [script, *args])
    with pytest.raises(SystemExit) as exited:
        runpy.run_path(str(REPO / script), run_name="__main__")
    captured = capsys.readouterr()
    return exited.value.code, captured.out, captured.err


@pytest.fixture
def images(tmp_path):
    return make_cub_images(tmp_path / "CUB_200_2011" / "images")


def _single_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def test_unknown_name_exits_2_with_one_line_listing_the_known_sets(runs):
    result = runs["unknown"]
    assert result.returncode == 2
    line = _single_line(result.stderr)
    assert "no_such_set" in line and "mnist5k" in line and "cub" in line


def test_list_shows_every_set_with_its_description(monkeypatch, capsys):
    code, out, _ = run_script("datasets/download.py", "--list", monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0
    names = [line.split()[0] for line in out.splitlines()]
    assert {"mnist5k", "cifar10", "cub", "food101", "coco", "oasis"} <= set(names)


def test_embedded_set_works_offline(runs):
    result = runs["mnist5k"]
    assert result.returncode == 0, result.stderr
    assert "train" in result.stdout and "4000" in result.stdout and "1000" in result.stdout
    assert "10 classes" in result.stdout


def test_offline_download_is_one_clear_line_without_traceback(runs):
    result = runs["offline"]
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    line = _single_line(result.stderr)
    assert "cifar10" in line and "not available" in line and "mnist5k" in line


def resize(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    return run_script("datasets/resize_dataset.py", *args, monkeypatch=monkeypatch, capsys=capsys)


def test_resize_writes_rgb_32px_files_and_lists_the_skipped_ones(tmp_path, images, monkeypatch, capsys):
    out = tmp_path / "out"
    code, stdout, _ = resize(
        monkeypatch, capsys, "--input_folder", str(images), "--output_folder", str(out), "--res", "32"
    )
    assert code == 0
    good = sum(len(names) for names in CUB_GOOD.values())
    assert f"wrote {good} images" in stdout
    assert f"skipped {len(CUB_BAD)} file(s):" in stdout
    for bad in CUB_BAD:
        assert Path(bad).name in stdout
    files = sorted(p for p in out.rglob("*") if p.is_file())
    assert len(files) == good
    for path in files:
        with Image.open(path) as image:
            assert (image.mode, image.size) == ("RGB", (32, 32))
    assert {p.parent.name for p in files} == set(CUB_GOOD)  # the class folders are kept


def test_resize_with_a_missing_input_folder_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    code, _, stderr = resize(
        monkeypatch,
        capsys,
        "--input_folder",
        str(tmp_path / "nope"),
        "--output_folder",
        str(tmp_path / "out"),
        "--res",
        "32",
    )
    assert code == 2 and "does not exist" in _single_line(stderr)
    assert not (tmp_path / "out").exists()


def test_resize_refuses_an_output_folder_inside_the_input(images, monkeypatch, capsys):
    code, _, stderr = resize(
        monkeypatch,
        capsys,
        "--input_folder",
        str(images),
        "--output_folder",
        str(images / "small"),
        "--res",
        "32",
    )
    assert code == 2 and "must not be the input folder" in _single_line(stderr)
    assert not (images / "small").exists()


def test_resize_rejects_a_bad_resolution(tmp_path, images, monkeypatch, capsys):
    code, _, stderr = resize(
        monkeypatch,
        capsys,
        "--input_folder",
        str(images),
        "--output_folder",
        str(tmp_path / "out"),
        "--res",
        "0",
    )
    assert code == 2 and "--res" in _single_line(stderr)
