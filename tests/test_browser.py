"""The course in a real client: JupyterLab in headless Chromium runs notebook 05 and a slider redraws its picture.

JupyterLab starts on a free loopback port with a token, its own settings, runtime and
config folders, and a fresh checkpoint folder (the notebook trains under ``COURSE_PROFILE=smoke``).
Chromium is Debian's ``/usr/bin/chromium`` (``$COURSE_CHROMIUM`` overrides it), driven by
Playwright; no browser is ever downloaded. Screenshots and the server log land in
``test-artifacts/browser/`` (``$COURSE_TEST_ARTIFACTS`` overrides the root); the path is printed.

Without Chromium the test fails and says how to install it; ``COURSE_SKIP_BROWSER=1`` turns
that failure into a skip on a machine where the browser cannot be had (never in CI).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from utils.config import REPO_ROOT

NOTEBOOK = REPO_ROOT / "notebooks" / "05_cvae.ipynb"
TOKEN = "course-browser-test"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
LAB_SETTINGS = {  # no news pop-up over the page; every cell stays in the DOM (no virtual scrolling)
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}
# Run All is over when no prompt reads [*] (a failed cell leaves the later ones at [ ]) and one has a number.
RUN_ALL_FINISHED = """() => {
    const p = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(n => n.textContent.trim());
    return p.length > 0 && !p.some(t => t === '[*]:') && p.some(t => /\\[\\d+\\]:/.test(t));
}"""
SERVER_START_S, PAGE_IDLE_S, RUN_ALL_S, REDRAW_S = 60, 60, 180, 15  # ceilings; a quiet run takes ~40 s in all


def chromium_executable() -> str:
    path = os.environ.get("COURSE_CHROMIUM", "/usr/bin/chromium")
    if Path(path).is_file() and os.access(path, os.X_OK):
        return path
    message = (f"no Chromium at {path}: install Debian's package (`sudo apt-get install -y chromium`; `.ci/run` does "
               "it in CI) or point COURSE_CHROMIUM at a Chromium/Chrome binary. Never `playwright install`.")
    if os.environ.get("COURSE_SKIP_BROWSER") == "1":
        pytest.skip(message)
    pytest.fail(message, pytrace=False)


def artifacts_dir() -> Path:
    root = Path(os.environ.get("COURSE_TEST_ARTIFACTS", REPO_ROOT / "test-artifacts")) / "browser"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    return root


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_lab_settings(settings_dir: Path) -> None:
    for plugin, values in LAB_SETTINGS.items():
        path = settings_dir / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def wait_for_server(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"JupyterLab exited with status {process.returncode}; its log:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"JupyterLab did not answer within {SERVER_START_S} s; its log:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def lab():
    """A JupyterLab server over a copy of the notebook inside the repository (the bootstrap finds the root)."""
    artifacts = artifacts_dir()
    root = artifacts / "lab"
    (root / "notebooks").mkdir(parents=True)
    shutil.copy(NOTEBOOK, root / "notebooks" / NOTEBOOK.name)
    jupyter = artifacts / "jupyter"
    write_lab_settings(jupyter / "settings")
    env = {**os.environ, "COURSE_PROFILE": "smoke", "COURSE_CHECKPOINTS": str(artifacts / "checkpoints"),
           "JUPYTER_CONFIG_DIR": str(jupyter / "config"), "JUPYTER_DATA_DIR": str(jupyter / "data"),
           "JUPYTER_RUNTIME_DIR": str(jupyter / "runtime"), "JUPYTERLAB_SETTINGS_DIR": str(jupyter / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(jupyter / "workspaces")}
    port = free_port()
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               "--ServerApp.port_retries=0", f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    log = artifacts / "jupyterlab.log"
    base = f"http://127.0.0.1:{port}"
    with log.open("w") as log_file:
        process = subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT, cwd=root)
    try:
        wait_for_server(f"{base}/api/status?token={TOKEN}", process, log)
        yield {"base": base, "artifacts": artifacts}
    finally:
        try:  # a clean shutdown stops the kernels too
            urllib.request.urlopen(urllib.request.Request(f"{base}/api/shutdown?token={TOKEN}", method="POST"),
                                   timeout=5)
            process.wait(timeout=15)
        except (OSError, subprocess.TimeoutExpired):
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def prompts(page) -> list[str]:
    return page.eval_on_selector_all(".jp-CodeCell .jp-InputPrompt", "nodes => nodes.map(n => n.textContent.trim())")


def pixel_difference(before: Path, after: Path) -> dict:
    a = np.asarray(Image.open(before).convert("RGB"), dtype=np.int16)
    b = np.asarray(Image.open(after).convert("RGB"), dtype=np.int16)
    assert a.shape == b.shape, f"the picture changed size: {a.shape} -> {b.shape}"
    changed = np.abs(a - b).max(axis=2) > 0
    return {"size": list(a.shape[:2]), "changed_pixels": int(changed.sum()), "changed_share": float(changed.mean()),
            "mean_abs_difference": float(np.abs(a - b).mean())}


def test_jupyterlab_runs_the_notebook_and_the_slider_redraws_the_picture(lab):
    chromium = chromium_executable()
    from playwright.sync_api import sync_playwright

    artifacts = lab["artifacts"]
    print(f"\nbrowser test artefacts: {artifacts}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(30_000)
            page.goto(f"{lab['base']}/lab/tree/notebooks/{NOTEBOOK.name}?token={TOKEN}")
            page.get_by_text(re.compile(r"\|\s*Idle")).first.wait_for(timeout=PAGE_IDLE_S * 1000)
            code_cells = page.locator(".jp-CodeCell").count()
            assert code_cells > 10, f"the notebook shows only {code_cells} code cells"

            page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
            page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
            started = time.monotonic()
            page.wait_for_function(RUN_ALL_FINISHED, timeout=RUN_ALL_S * 1000)
            run_seconds = time.monotonic() - started
            page.screenshot(path=artifacts / "after_run_all.png")
            not_run = [i for i, text in enumerate(prompts(page)) if not re.fullmatch(r"\[\d+\]:", text)]
            outputs = page.locator(".jp-OutputArea-output")
            errors = outputs.filter(has_text=re.compile(r"Traceback|Error:")).all_inner_texts()
            assert not not_run, f"code cells {not_run} did not run (a cell failed?): {errors[:1]}"
            assert outputs.filter(has_text="all checks passed").count() == 1, f"the checks did not pass: {errors[:1]}"
            assert outputs.filter(has_text=re.compile("model not found|Error displaying")).count() == 0

            picture = page.locator(".widget-image").first
            slider = page.locator(".widget-slider").first
            picture.scroll_into_view_if_needed()
            explorer = page.locator(".widget-vbox", has=picture).last
            readout_before = slider.locator(".widget-readout").inner_text()
            src_before = picture.get_attribute("src")
            picture.screenshot(path=artifacts / "picture_before.png")
            explorer.screenshot(path=artifacts / "explorer_before.png")

            handle = slider.locator(".noUi-handle")
            handle.focus()
            for _ in range(15):  # step 0.1: z1 moves by -1.5
                handle.press("ArrowLeft")
            page.wait_for_function("before => document.querySelector('.widget-image').src !== before",
                                   arg=src_before, timeout=REDRAW_S * 1000)
            page.wait_for_timeout(300)  # let the new PNG be decoded and painted before the screenshot
            readout_after = slider.locator(".widget-readout").inner_text()
            picture.screenshot(path=artifacts / "picture_after.png")
            explorer.screenshot(path=artifacts / "explorer_after.png")
        finally:
            browser.close()

    difference = pixel_difference(artifacts / "picture_before.png", artifacts / "picture_after.png")
    record = {"run_all_seconds": round(run_seconds, 1), "slider": [readout_before, readout_after], **difference}
    (artifacts / "slider.json").write_text(json.dumps(record, indent=2))
    print(f"run all: {run_seconds:.1f} s; slider z1 {readout_before} -> {readout_after}; picture {difference}")
    assert readout_before != readout_after
    assert difference["changed_share"] > 0.01, f"the decoded picture barely changed: {difference}"
