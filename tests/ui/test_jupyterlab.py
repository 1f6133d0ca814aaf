"""JupyterLab, where learners use the kit: start Lab as ``make lab`` does, open 00_quickstart in headless
Chromium, run every cell, and check that no cell errors and the product-picture grid renders.

Run with ``make ui-test`` (CI does). Needs Debian's ``chromium`` (``/usr/bin/chromium``; override with
``$CHROMIUM``) and Playwright's Python client, driving that browser -- Playwright's own browser
download cannot work offline. Everything talks to 127.0.0.1 only and stops by itself.
"""

from __future__ import annotations

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

from recsys_tf.course import SOCKET_FOLDER_PREFIX, unix_sockets_fit

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
OUT = ROOT / "build" / "ui"
pytestmark = pytest.mark.ui

playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (make ui-test does)")
if not Path(CHROMIUM).exists():  # pragma: no cover - make ui-test installs it
    pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium (make ui-test does)", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab started like ``make lab`` (root allowed), on a private copy of the notebooks."""
    work = tmp_path_factory.mktemp("lab")
    shutil.copytree(ROOT / "notebooks", work / "notebooks")  # Lab may autosave: never into the repository
    port, token = _free_port(), secrets.token_hex(16)
    cmd = [sys.executable, "-m", "recsys_tf.lab", str(work / "notebooks"), "--no-browser", f"--port={port}",
           "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}"]  # fmt: skip
    log = open(work / "lab.log", "w")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"JupyterLab did not start: {(work / 'lab.log').read_text()[-2000:]}") from None
                time.sleep(0.5)
        yield base, token, work / "notebooks"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def test_quickstart_runs_in_jupyterlab_without_errors_and_shows_pictures(lab):
    base, token, folder = lab
    OUT.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])  # fmt: skip
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)
            page.goto(f"{base}/lab/tree/00_quickstart.ipynb?token={token}")
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
            # the kernel named in the notebook must start without a "select kernel" dialog
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=90_000)
            page.locator(".jp-Notebook .jp-Cell").first.click()  # focus the notebook, as a user would
            for attempt in range(3):  # Run > Run All Cells; a click that lands while Lab is still busy is retried
                page.click(".lm-MenuBar-itemLabel:text-is('Run')")
                page.click("li.lm-Menu-item[data-command='runmenu:run-all']")
                try:
                    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='busy']", timeout=15_000)
                    break
                except playwright_api.TimeoutError:
                    page.keyboard.press("Escape")
            else:
                page.screenshot(path=str(OUT / "00_quickstart-not-started.png"))
                raise AssertionError("Run > Run All Cells did not start the kernel in JupyterLab")
            # Lab renders only the cells in view, so completion is read from what Lab saves: every code
            # cell with an execution count, or an error output (Lab stops running after a failure)
            saved, deadline = folder / "00_quickstart.ipynb", time.monotonic() + 240
            while True:
                page.wait_for_timeout(3_000)
                page.keyboard.press("Control+s")
                page.wait_for_timeout(1_000)
                cells = [c for c in json.loads(saved.read_text())["cells"] if c["cell_type"] == "code"]
                errors = [o for c in cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
                if errors or all(c.get("execution_count") for c in cells):
                    break
                if time.monotonic() > deadline:
                    page.screenshot(path=str(OUT / "00_quickstart-timeout.png"))
                    raise AssertionError(f"notebook 00 did not finish in 4 minutes in JupyterLab: "
                                         f"{[c.get('execution_count') for c in cells]}")  # fmt: skip
            page.screenshot(path=str(OUT / "00_quickstart.png"), full_page=False)
            assert not errors, f"cells failed in JupyterLab: {[(e['ename'], e['evalue']) for e in errors][:2]}"
            figures = [o for c in cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
            assert len(figures) >= 4, f"expected the notebook's 4 figures, found {len(figures)}"
            shown = page.locator(".jp-OutputArea-output img")
            widths = shown.evaluate_all("imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
            assert widths and all(w > 100 for w in widths), f"a figure did not render in the page: widths {widths}"
            recorded = "".join("".join(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in cells[-1]["outputs"])
            assert "recorded mf_ndcg@10" in recorded  # the last cell shows the recorded results
        finally:
            browser.close()
    _kernel_talked_over_private_sockets(base, token, folder.parent / "lab.log")


def _kernel_talked_over_private_sockets(base: str, token: str, log: Path) -> None:
    """The notebook's kernel used Unix sockets in a folder of its own (0700), removed with the kernel,
    and ipykernel's "TCP without encryption" warning never reached Lab's log (``make lab``'s terminal)."""
    import stat

    from jupyter_core.paths import jupyter_runtime_dir

    if not unix_sockets_fit():  # pragma: no cover - Windows, or a temporary folder too long for sockets
        pytest.skip("Unix socket paths do not fit here: Lab's kernels use TCP")
    api = f"{base}/api/kernels"
    kernels = json.loads(urllib.request.urlopen(f"{api}?token={token}", timeout=10).read())
    assert kernels, "no kernel is running after the notebook ran"
    for kernel in kernels:
        conn = json.loads((Path(jupyter_runtime_dir()) / f"kernel-{kernel['id']}.json").read_text())
        folder = Path(conn["ip"]).parent
        assert conn["transport"] == "ipc" and folder.name.startswith(SOCKET_FOLDER_PREFIX), conn
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, oct(folder.stat().st_mode)
        urllib.request.urlopen(urllib.request.Request(f"{api}/{kernel['id']}?token={token}", method="DELETE"), timeout=30)
        assert not folder.exists(), f"{folder} was left behind by the shut-down kernel"
    assert "running over TCP without encryption" not in log.read_text()
