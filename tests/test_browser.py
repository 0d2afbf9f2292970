"""The notebook door as a new user meets it: `scripts/lab.sh` in a real Chromium.

Runs the real `scripts/lab.sh` (in the product's own environment, `.venv`, built here through
`scripts/setup.sh` when missing or stale) on a free port with every data, config and runtime
directory in a temp dir, opens the URL it prints in Debian's Chromium through Playwright, and
checks what a first visit shows: the quickstart notebook in front, no JupySQL toolbar button,
no news pop-up, and a clean browser console.

Chromium comes from Debian (`apt-get install chromium`; `.ci/run` does it); `playwright install`
downloads a browser and cannot work here. Without Chromium or Playwright the test skips
locally and fails under CI=true.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from live_server import CHROMIUM_ARGS, free_port, log_tail, stop_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
LAB_SH = ROOT / "scripts" / "lab.sh"
SETUP_SH = ROOT / "scripts" / "setup.sh"
QUICKSTART = ROOT / "notebooks" / "quickstart.ipynb"
SETUP_TIMEOUT = 30 * 60  # a first build of llama-cpp-python takes ~10 minutes
START_TIMEOUT = 180  # lab.sh with its environment ready: `aigis demo`, then the server (~16 s)

# Browser console errors JupyterLab itself logs on a first visit that are harmless here, each
# as (regular expression, reason). None are logged with this JupyterLab: keep it that way, and
# add one only with the reason it is harmless. (JupySQL's plugin logged
# "TypeError: Cannot read properties of undefined (reading 'toolbar')" on every load: that is
# a failure, not an allowance; the product's environment must not carry it.)
ALLOWED_CONSOLE_ERRORS: tuple[tuple[str, str], ...] = ()

# Variables of the caller's shell that would point the server away from its isolated dirs,
# or at another environment.
SCRUBBED_ENV = (
    "VIRTUAL_ENV", "JUPYTER_PATH", "JUPYTER_TOKEN", "JUPYTER_CONFIG_PATH", "JUPYTERLAB_DIR",
    "JUPYTER_PREFER_ENV_PATH", "AIGIS_DATABASE_URL", "AIGIS_KEY_FILE", "MASTER_ENCRYPTION_KEY",
    "PYTHONPATH",
)


# -- the server -------------------------------------------------------------------------------

@dataclass
class Lab:
    url: str  # as lab.sh printed it, token included
    port: int
    log: Path
    proc: subprocess.Popen
    runtime_dir: Path




def _lab_env(base: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    # The test's own environment (.venv-test, with JupySQL) must not leak in through PATH:
    # lab.sh runs as from a user's plain shell.
    own_bin = str(Path(sys.prefix) / "bin")
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != own_bin)
    dirs = {
        "AIGIS_DATA_DIR": "aigis",
        "JUPYTER_CONFIG_DIR": "jupyter-config",
        "JUPYTER_DATA_DIR": "jupyter-data",
        "JUPYTER_RUNTIME_DIR": "jupyter-runtime",
        "JUPYTERLAB_SETTINGS_DIR": "lab-user-settings",
        "JUPYTERLAB_WORKSPACES_DIR": "lab-workspaces",
        "IPYTHONDIR": "ipython",
    }
    for var, name in dirs.items():
        (base / name).mkdir(parents=True, exist_ok=True)
        env[var] = str(base / name)
    env["AIGIS_LAB_PORT"] = str(port)
    return env






@pytest.fixture(scope="module")
def lab_env_ready() -> None:
    """The product's environment, built as lab.sh builds it (a no-op when its stamp is current)."""
    try:
        subprocess.run(
            ["bash", "-c", 'source "$1" && ensure_lab_env', "setup", str(SETUP_SH)],
            check=True, capture_output=True, text=True, timeout=SETUP_TIMEOUT,
        )
    except subprocess.CalledProcessError as e:
        pytest.fail(f"setting up the lab environment failed:\n{e.stdout}\n{e.stderr}"[-4000:])


@pytest.fixture
def lab(lab_env_ready: None, tmp_path: Path) -> Iterator[Lab]:
    port = free_port()
    log = tmp_path / "lab.log"
    runtime_dir = tmp_path / "env" / "jupyter-runtime"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["bash", str(LAB_SH)],
            cwd=tmp_path,  # lab.sh works from anywhere
            env=_lab_env(tmp_path / "env", port),
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, stopped as one
        )
    try:
        url_re = re.compile(rf"http://127\.0\.0\.1:{port}/\S*\?token=\w+")
        deadline = time.monotonic() + START_TIMEOUT
        url = None
        while url is None:
            if proc.poll() is not None:
                pytest.fail(f"lab.sh exited with {proc.returncode}:\n{log_tail(log)}")
            if time.monotonic() > deadline:
                pytest.fail(f"lab.sh printed no URL in {START_TIMEOUT} s:\n{log_tail(log)}")
            m = url_re.search(log.read_text(errors="replace"))
            url = m.group(0) if m else None
            if url is None:
                time.sleep(0.2)
        token = url.rsplit("token=", 1)[1]
        while True:  # the server answers, with that token
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/api/status?token={token}", timeout=5
                ) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail(f"the server at port {port} does not answer:\n{log_tail(log)}")
            time.sleep(0.2)
        yield Lab(url=url, port=port, log=log, proc=proc, runtime_dir=runtime_dir)
    finally:
        stop_server(proc, runtime_dir)


# -- the browser ------------------------------------------------------------------------------

@dataclass
class Visit:
    seconds_to_notebook: float = 0.0
    console_errors: list[str] = field(default_factory=list)


def _unexpected(errors: list[str]) -> list[str]:
    return [e for e in errors if not any(re.search(p, e) for p, _ in ALLOWED_CONSOLE_ERRORS)]


def _first_heading() -> str:
    cell = json.loads(QUICKSTART.read_text())["cells"][0]
    first_line = "".join(cell["source"]).splitlines()[0]
    return first_line.lstrip("#").strip()


def test_lab_opens_on_the_quickstart(chromium_path: str, lab: Lab, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    visit = Visit()
    screenshot = tmp_path / "lab.png"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.on(
                "console",
                lambda m: visit.console_errors.append(f"console: {m.text}")
                if m.type == "error" else None,
            )
            page.on("pageerror", lambda e: visit.console_errors.append(f"pageerror: {e}"))
            page.set_default_timeout(60_000)

            t0 = time.monotonic()
            page.goto(lab.url)
            # The main area's current tab: the quickstart, active, not the Launcher.
            current = page.locator("#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current")
            expect(current).to_have_count(1, timeout=60_000)
            expect(current.locator(".lm-TabBar-tabLabel")).to_have_text(
                "quickstart.ipynb", timeout=60_000
            )
            expect(current).to_have_class(re.compile(r"\bjp-mod-current\b"))
            first_cell = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell").first
            expect(first_cell).to_be_visible(timeout=60_000)
            expect(first_cell).to_contain_text(_first_heading())
            visit.seconds_to_notebook = time.monotonic() - t0

            # The kernel the notebook asks for starts in the product's environment; by then a
            # news prompt would have shown (it shows ~3 s after load when not turned off).
            kernel = page.locator(".jp-StatusBar-TextItem", has_text=re.compile(r"\| Idle$"))
            expect(kernel).to_have_count(1, timeout=60_000)
            page.wait_for_timeout(3_000)
            page.screenshot(path=str(screenshot))

            tabs = page.locator("#jp-main-dock-panel .lm-TabBar-tab .lm-TabBar-tabLabel")
            assert tabs.all_inner_texts() == ["quickstart.ipynb"], tabs.all_inner_texts()
            expect(page.locator(".jp-Launcher")).to_have_count(0)

            # No JupySQL: neither its labextension nor its toolbar button.
            config = json.loads(page.locator("#jupyter-config-data").text_content() or "{}")
            extensions = [e["name"] for e in config.get("federated_extensions", [])]
            assert not [n for n in extensions if "jupysql" in n], extensions
            expect(page.locator("[data-jp-item-name=formatSQL]")).to_have_count(0)
            expect(page.get_by_text("Format SQL")).to_have_count(0)
            expect(page.locator("[aria-label='Format SQL']")).to_have_count(0)

            # No news pop-up, nor any other notification.
            expect(page.locator(".Toastify__toast")).to_have_count(0)
            expect(page.locator(".jp-Notification-Status-Text")).to_have_text("0")
        finally:
            browser.close()

    unexpected = _unexpected(visit.console_errors)
    assert not unexpected, "browser console errors:\n" + "\n".join(unexpected)
    print(f"\nnotebook in front {visit.seconds_to_notebook:.1f} s after navigation; "
          f"screenshot: {screenshot}")
