"""The widgets in a real browser: JupyterLab on loopback, driven in headless Chromium.

The other widget tests (test_widgets.py) move sliders from Python. This one
checks the part they cannot: that the JavaScript side of ipywidgets renders
the explorer in JupyterLab, that a key press on the slider reaches the kernel,
and that the new image comes back and is drawn.

It opens chapter 01b (a copy, so JupyterLab's autosave cannot touch the
committed notebook), runs every cell in fast mode, moves the first slider of
the latent explorer with the arrow key and checks that the picture changed.
A screenshot of the explorer is saved: under $GENAI_ARTIFACTS if set, else
in pytest's temporary folder; the path is printed.

Needs Chromium (Debian: apt-get install chromium) and Playwright
(pip install -e ".[browser]"); without them the test is skipped, and
pytest's summary says why (addopts has -rs). Only 127.0.0.1 is used.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHAPTER = Path(__file__).resolve().parents[1] / "chapters" / "01b_vae_practice.ipynb"
WIDGET_CELL_TEXT = "latent_explorer("  # the cell whose output is the explorer
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SERVER_START_S = 60  # JupyterLab answering on its port
RUN_ALL_S = 300  # every cell of the chapter in fast mode (about 20 s on 2 cores)


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# JupyterLab user settings: start the notebook's kernel without asking (a "Select Kernel"
# dialog would block the menus), and do not offer to fetch Jupyter's news.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"autoStartDefaultKernel": True},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false"},
}


def start_jupyterlab(root: Path, port: int, token: str) -> subprocess.Popen:
    """JupyterLab on 127.0.0.1 only, with its settings, workspaces and runtime files in ``root``."""
    for name, values in LAB_SETTINGS.items():
        (root / ".settings" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / ".settings" / name).write_text(json.dumps(values))
    env = {
        **os.environ,
        "JUPYTER_RUNTIME_DIR": str(root / ".runtime"),
        "JUPYTER_CONFIG_DIR": str(root / ".config"),
    }
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--port-retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        f"--LabApp.user_settings_dir={root / '.settings'}",
        f"--LabApp.workspaces_dir={root / '.workspaces'}",
        "--LabApp.news_url=",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    log = open(root / "jupyterlab.log", "w")
    # its own process group, so the kernels it starts are stopped with it
    return subprocess.Popen(
        command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def wait_until_up(server: subprocess.Popen, url: str, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(
                f"JupyterLab exited with code {server.returncode}:\n{log.read_text()[-3000:]}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"JupyterLab did not answer within {SERVER_START_S} s:\n{log.read_text()[-3000:]}")


def wait_for_kernel(kernels_url: str) -> None:
    """Until the notebook's kernel is started, connected to the page, and idle.

    JupyterLab shows "Idle" before the page's connection to the kernel exists,
    and a "Run All" sent before then runs nothing; the server knows better.
    """
    deadline, kernels = time.monotonic() + SERVER_START_S, []
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(kernels_url, timeout=5) as response:
                kernels = json.load(response)
        except OSError as error:  # a busy server may drop one poll; the deadline still holds
            kernels = [str(error)]
        if any(
            isinstance(k, dict) and k["connections"] > 0 and k["execution_state"] == "idle"
            for k in kernels
        ):
            return
        time.sleep(0.5)
    pytest.fail(
        f"the notebook's kernel was not connected and idle within {SERVER_START_S} s: {kernels}"
    )


def stop(server: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:
            return
        try:
            server.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture
def chromium() -> str:
    """Chromium's path, once both it and Playwright are known to be here; else the test is skipped."""
    path = chromium_path()
    if path is None:
        pytest.skip(
            "browser test: no Chromium on this machine (Debian/Ubuntu: apt-get install chromium)"
        )
    if importlib.util.find_spec("playwright") is None:
        pytest.skip('browser test: Playwright is not installed (pip install -e ".[browser]")')
    return path


@pytest.fixture
def jupyterlab(chromium, tmp_path):
    """A running JupyterLab serving a copy of chapter 01b: yields the notebook's URL and the kernels API's."""
    shutil.copy(CHAPTER, tmp_path / CHAPTER.name)
    port, token = free_port(), secrets.token_hex(16)
    server = start_jupyterlab(tmp_path, port, token)
    try:
        wait_until_up(
            server, f"http://127.0.0.1:{port}/api/status?token={token}", tmp_path / "jupyterlab.log"
        )
        yield {
            "notebook": f"http://127.0.0.1:{port}/lab/tree/{CHAPTER.name}?token={token}",
            "kernels": f"http://127.0.0.1:{port}/api/kernels?token={token}",
        }
    finally:
        stop(server)


def test_latent_explorer_slider_redraws_in_chromium(chromium, jupyterlab, tmp_path):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    artifacts = Path(os.environ.get("GENAI_ARTIFACTS", tmp_path))
    artifacts.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(jupyterlab["notebook"])
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
            wait_for_kernel(jupyterlab["kernels"])
            page.get_by_role("menuitem", name="Run", exact=True).click()
            page.get_by_role("menuitem", name="Run All Cells", exact=True).click()

            cell = page.locator(".jp-CodeCell", has_text=WIDGET_CELL_TEXT).first
            handle = cell.locator(".widget-slider .noUi-handle").first
            handle.wait_for(state="visible", timeout=RUN_ALL_S * 1000)
            image = cell.locator(".jupyter-widgets img").first
            image.wait_for(state="visible", timeout=30_000)
            cell.scroll_into_view_if_needed()
            before_src, before_pixels = image.get_attribute("src"), image.screenshot()
            readout = cell.locator(".widget-readout").first
            before_readout = readout.inner_text()

            handle.focus()
            for _ in range(40):  # 40 steps of 0.03: z_1 from 0 to 1.2
                handle.press("ArrowRight")
            try:
                page.wait_for_function(
                    "([img, src]) => img.src !== src",
                    arg=[image.element_handle(), before_src],
                    timeout=30_000,
                )
            except PlaywrightTimeout:
                raise AssertionError(
                    "the slider moved but no new image arrived from the kernel in 30 s"
                ) from None
            page.wait_for_timeout(500)  # let the last redraw of the key presses land
            after_pixels = image.screenshot()
            after_readout = readout.inner_text()
            shot = artifacts / "browser_latent_explorer.png"
            cell.screenshot(path=str(shot))
            print(f"browser test screenshot: {shot}")
        except Exception:
            failure = artifacts / "browser_failure.png"
            page.screenshot(path=str(failure), full_page=True)
            print(
                f"browser test failed; the page is in {failure}; JupyterLab's log:\n"
                f"{(tmp_path / 'jupyterlab.log').read_text()[-3000:]}"
            )
            raise
        finally:
            browser.close()

    assert (before_readout, after_readout) == ("0.00", "1.20"), (
        "the slider did not move by 40 steps of 0.03"
    )
    assert after_pixels != before_pixels, "the slider moved but the decoded image was not redrawn"
