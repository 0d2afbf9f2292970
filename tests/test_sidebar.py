"""The JupyterLab sidebar (`labextension/`): its frontend unit tests, its build, and the whole
panel in a real browser.

* The TypeScript unit tests (jest through `@jupyterlab/testutils`: the API client, the SSE
  parser, turns and notebook cells) run here, so CI's pytest run fails when they fail.
* The build: the lock file's pins, the installed environment's prebuilt copy. A plain
  `pip install` into a new environment is checked in `tests/test_install.py`.
* The browser tests start a real `jupyter lab` from the product's environment (`.venv`, as
  `scripts/lab.sh` builds it) with every directory in a temp dir, and drive Debian's Chromium
  through Playwright, step by step as a user: open the panel from the command palette, add
  connections, meet "No model selected", ask the embedded `local` model, watch a scripted
  model stream its answer with a table and a chart, stop long turns, insert an answer into a
  notebook and run it, reload the page, show markup and script from the model and the
  database as text, save an answer as a verified query that the next same question uses, and
  keep a connection's notes. Every step is photographed in the light and the dark theme under
  `tests/screenshots/sidebar/` (gitignored) for a person to look at.

The scripted model (`sidebar_server.py`) is registered by a small server extension so the
streaming, chart and stop steps do not depend on what a 270M-parameter model writes.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import missing
from live_server import CHROMIUM_ARGS, free_port, log_tail, stop_server
from sidebar_server import (
    CATEGORIES_SQL,
    HOSTILE,
    HOSTILE_COLUMNS,
    POISONED_TABLE,
    TRAPPED_ANSWER,
)

ROOT = Path(__file__).resolve().parent.parent
LABEXT = ROOT / "labextension"
TESTS = Path(__file__).resolve().parent
SETUP_SH = ROOT / "scripts" / "setup.sh"
SCREENSHOTS = Path(os.environ.get("AIGIS_SCREENSHOTS", TESTS / "screenshots")) / "sidebar"
SETUP_TIMEOUT = 30 * 60  # a first build of llama-cpp-python takes ~10 minutes
START_TIMEOUT = 120
LOCAL_TURN_TIMEOUT = 240_000  # ms: the first question loads the embedded model
TOKEN = "sidebar-test-token"
SEGMENTS_QUESTION = "How many customers are in each segment? Show a bar chart."
# the scripted model's hostile scripts (`sidebar_server.SCRIPTS`), by a word of each question
HOSTILE_QUESTION = "Chart the hostile rows as a bar chart"
TRAPPED_QUESTION = 'Chart the trapped rows <img src=x onerror="window.__pwned=10"> as bars'
POISONED_QUESTION = "Read the poisoned table"
# saved as a verified query of `demo` with its SQL (`sidebar_server.CATEGORIES_SQL`), then asked
# again
VERIFIED_QUESTION = "How many product categories are there?"
#: What an answer saved as a verified query shows instead of its "Verify" button.
VERIFIED_MARK = "Verified \N{CHECK MARK}"
#: A connection's notes, typed into its form (quotes, an apostrophe and markup stay as written).
CONNECTION_NOTES = ("Revenue means the sum of Invoice.Total; \"active\" customers ordered in "
                    "the last 90 days. Don't count cancelled orders <b>ever</b>.")

# Variables of the caller's shell that would point the server away from its isolated dirs.
SCRUBBED_ENV = (
    "VIRTUAL_ENV", "JUPYTER_PATH", "JUPYTER_TOKEN", "JUPYTER_CONFIG_PATH", "JUPYTERLAB_DIR",
    "JUPYTER_PREFER_ENV_PATH", "AIGIS_DATABASE_URL", "AIGIS_KEY_FILE", "MASTER_ENCRYPTION_KEY",
    "PYTHONPATH", "AIGIS_DEFAULT_MODEL", "AIGIS_ALLOWED_MODELS",
)

# Browser console errors that are expected here, as (regular expression, reason). Chromium
# logs every HTTP error answer of a fetch, with the URL after the text (see `ui`).
ALLOWED_CONSOLE_ERRORS: tuple[tuple[str, str], ...] = (
    (r"status of 502 \(Bad Gateway\) @ \S*/aigis/connections(/[^/?]+)?\?",
     "the connection step saves a PostgreSQL connection to a port where nothing listens: "
     "the API answers 502 and the sidebar shows the error inline"),
    (r"status of 400 \(Bad Request\) @ \S*/aigis/chat/[^/]+/message\?",
     "asking before picking a model is refused with 400 (the 'No model selected' step)"),
)


# pytest-jupyter's per-test fixtures close "the" event loop after each test; Playwright's sync
# API keeps its loop for the whole module here (one browser across the steps), and this module
# starts no in-process Jupyter server to clean up.
@pytest.fixture(autouse=True)
def jp_asyncio_loop() -> Iterator[None]:
    yield None


@pytest.fixture(autouse=True)
def jp_server_cleanup() -> Iterator[None]:
    yield None


# -- the frontend's own tests and build -------------------------------------------------------

def _jlpm() -> str:
    here = Path(sys.prefix) / "bin" / "jlpm"
    found = str(here) if here.exists() else shutil.which("jlpm")
    if not found:
        missing("jlpm (JupyterLab's yarn, from the jupyter-builder package)")
    if not shutil.which("node"):
        missing("Node.js (node on PATH)")
    return str(found)


@pytest.fixture(scope="module")
def node_modules() -> Path:
    """The sidebar's npm dependencies, as the install's build hook left them (else installed
    here from the lock file and the machine's yarn cache)."""
    jlpm = _jlpm()
    if not (LABEXT / "node_modules" / "jest").is_dir():
        env = {**os.environ, "CI": "true"}  # --immutable: the committed yarn.lock as it is
        r = subprocess.run([jlpm, "install"], cwd=LABEXT, env=env, capture_output=True,
                           text=True, timeout=600)
        if r.returncode:
            pytest.fail(f"jlpm install failed:\n{r.stdout[-3000:]}\n{r.stderr[-2000:]}")
    return LABEXT / "node_modules"


def test_frontend_unit_tests(node_modules: Path) -> None:
    """jest: the API client, the SSE parser, turns and cells (labextension/src/__tests__)."""
    r = subprocess.run([_jlpm(), "test", "--ci"], cwd=LABEXT, capture_output=True, text=True,
                       timeout=600, env={**os.environ, "FORCE_COLOR": "0"})
    out = r.stdout + r.stderr
    assert r.returncode == 0, f"jest failed:\n{out[-6000:]}"
    summary = re.search(r"Tests:\s+(\d+) passed, (\d+) total", out)
    assert summary and summary.group(1) == summary.group(2), out[-3000:]
    assert int(summary.group(2)) >= 25, "fewer frontend tests ran than exist"
    print("\n" + "\n".join(ln for ln in out.splitlines() if ln.startswith(("PASS", "Tests:"))))


def test_frontend_typechecks(node_modules: Path) -> None:
    """The sources and the tests compile under `strict` TypeScript."""
    r = subprocess.run([_jlpm(), "typecheck"], cwd=LABEXT, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, f"tsc failed:\n{r.stdout[-4000:]}{r.stderr[-2000:]}"


def test_lock_pins_the_builder_platform_binaries() -> None:
    """The registry here lacks some of `@rspack/binding`'s platform packages newer than 2.2.9:
    the resolutions pin it and the committed lock file must hold only that version."""
    pkg = json.loads((LABEXT / "package.json").read_text())
    assert pkg["resolutions"]["@rspack/core"] == "2.2.9"
    assert pkg["resolutions"]["@rspack/binding"] == "2.2.9"
    lock = (LABEXT / "yarn.lock").read_text()
    versions = re.findall(r'^"?@rspack/(?:core|binding)@[^\n]*:\n  version: ([\d.]+)', lock, re.M)
    assert versions and set(versions) == {"2.2.9"}, versions


def test_labextension_metadata_matches_the_python_package() -> None:
    from aigis_jupyter import __version__

    pkg = json.loads((LABEXT / "package.json").read_text())
    assert pkg["name"] == "aigis-jupyter"
    assert pkg["version"] == __version__
    assert pkg["jupyterlab"]["discovery"]["server"]["base"]["name"] == "aigis_jupyter"
    install = json.loads((ROOT / "install.json").read_text())
    assert install["packageName"] == "aigis-jupyter"


def test_the_installed_environment_serves_the_sidebar() -> None:
    """This environment was installed from the repository (`pip install -e`): the build hook
    put the prebuilt extension in it, and JupyterLab lists it enabled and OK."""
    ext = Path(sys.prefix) / "share" / "jupyter" / "labextensions" / "aigis-jupyter"
    assert (ext / "package.json").is_file(), f"no prebuilt sidebar in {ext}"
    built = json.loads((ext / "package.json").read_text())
    assert built["jupyterlab"]["_build"]["load"].startswith("static/remoteEntry.")
    assert (ext / built["jupyterlab"]["_build"]["load"]).is_file()
    jupyter = Path(sys.prefix) / "bin" / "jupyter"
    r = subprocess.run([str(jupyter), "labextension", "list"], capture_output=True, text=True,
                       timeout=120, env={k: v for k, v in os.environ.items()
                                         if k not in ("JUPYTER_PATH", "JUPYTER_DATA_DIR")})
    listing = re.sub(r"\x1b\[[0-9;]*m", "", r.stdout + r.stderr)
    assert re.search(r"aigis-jupyter v[\d.]+\S* enabled OK", listing), listing


# -- a real JupyterLab -------------------------------------------------------------------------

#: Typed into the connection form; afterwards found nowhere in clear (the last step).
FORM_PASSWORD = "s3cret-Pa55"


@dataclass
class Lab:
    url: str
    base: str  # http://127.0.0.1:PORT/
    proc: subprocess.Popen
    log: Path
    runtime_dir: Path
    demo_db: Path
    notebooks: Path

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """Call the extension's REST API as the test's user (the same one as the page)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.base}aigis/{path}", data=data, method=method,
                                     headers={"Authorization": f"token {TOKEN}"})
        with urllib.request.urlopen(req, timeout=30) as r:
            raw = r.read()
        return json.loads(raw) if raw else None


@pytest.fixture(scope="module")
def lab_python() -> Path:
    """The product's environment (.venv, extras `local`), built as lab.sh builds it."""
    try:
        subprocess.run(["bash", "-c", 'source "$1" && ensure_lab_env && echo "$VENV"', "setup",
                        str(SETUP_SH)], check=True, capture_output=True, text=True,
                       timeout=SETUP_TIMEOUT)
    except subprocess.CalledProcessError as e:
        pytest.fail(f"setting up the lab environment failed:\n{e.stdout}\n{e.stderr}"[-4000:])
    venv = Path(os.environ.get("AIGIS_VENV", ROOT / ".venv"))
    return venv / "bin" / "python"


@pytest.fixture(scope="module")
def lab(lab_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    base = tmp_path_factory.mktemp("sidebar-lab")
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    own_bin = str(Path(sys.prefix) / "bin")  # the test environment must not leak in
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if p != own_bin)
    dirs = {"AIGIS_DATA_DIR": "aigis", "JUPYTER_CONFIG_DIR": "jupyter-config",
            "JUPYTER_DATA_DIR": "jupyter-data", "JUPYTER_RUNTIME_DIR": "jupyter-runtime",
            "JUPYTERLAB_SETTINGS_DIR": "lab-user-settings",
            "JUPYTERLAB_WORKSPACES_DIR": "lab-workspaces", "IPYTHONDIR": "ipython"}
    for var, name in dirs.items():
        (base / name).mkdir()
        env[var] = str(base / name)
    env["PYTHONPATH"] = str(TESTS)  # sidebar_server, the scripted model's server extension
    # merged with the environment's own server config (aigis_jupyter, jupyterlab enabled)
    (base / "jupyter-config" / "jupyter_server_config.json").write_text(json.dumps(
        {"ServerApp": {"jpserver_extensions": {"sidebar_server": True}}}))
    # a first save keeps "Untitled.ipynb" instead of asking for a name
    docmanager = base / "lab-user-settings" / "@jupyterlab" / "docmanager-extension"
    docmanager.mkdir(parents=True)
    (docmanager / "plugin.jupyterlab-settings").write_text(
        json.dumps({"renameUntitledFileOnSave": False}))
    notebooks = base / "notebooks"
    notebooks.mkdir()
    demo_db = base / "demo.sqlite"
    subprocess.run([str(lab_python), "-c", "import sys; from aigis_jupyter.demo import "
                    "build_demo_sqlite; build_demo_sqlite(sys.argv[1])", str(demo_db)],
                   check=True, env=env, timeout=120)
    port = free_port()
    args = [str(lab_python.parent / "jupyter"), "lab", "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
            "--ServerApp.open_browser=False", f"--IdentityProvider.token={TOKEN}",
            f"--ServerApp.root_dir={notebooks}",
            # lets the test switch themes and read notebook cells as a script would
            "--LabApp.expose_app_in_browser=True"]
    if os.getuid() == 0:
        args.append("--allow-root")
    log = base / "lab.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(args, cwd=base, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    url_base = f"http://127.0.0.1:{port}/"
    runtime_dir = base / "jupyter-runtime"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{log_tail(log)}")
            with contextlib.suppress(OSError), urllib.request.urlopen(
                    f"{url_base}aigis/models?token={TOKEN}", timeout=5) as r:
                if any(m["name"] == "scripted" for m in json.loads(r.read())):
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"jupyter lab did not serve the API in {START_TIMEOUT} s:\n"
                            f"{log_tail(log)}")
            time.sleep(0.3)
        yield Lab(url=f"{url_base}lab?token={TOKEN}", base=url_base, proc=proc, log=log,
                  runtime_dir=runtime_dir, demo_db=demo_db, notebooks=notebooks)
    finally:
        stop_server(proc, runtime_dir)


@dataclass
class UI:
    """The browser page and what the steps share."""

    page: Any
    lab: Lab
    console_errors: list[str] = field(default_factory=list)
    shots: list[Path] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def panel(self) -> Any:
        return self.page.get_by_role("region", name="Aigis chat")

    def question_box(self) -> Any:
        return self.panel.get_by_role("textbox", name="Question")

    def turn(self, question: str) -> Any:
        return self.panel.locator("article").filter(
            has=self.page.get_by_text(question, exact=True)).last

    def set_theme(self, theme: str) -> None:
        light = theme == "JupyterLab Light"
        self.page.evaluate("t => window.jupyterapp.commands.execute('apputils:change-theme', "
                           "{theme: t})", theme)
        self.page.wait_for_function(
            "light => document.body.dataset.jpThemeLight === String(light) && "
            "document.body.dataset.jpThemeName === (light ? 'JupyterLab Light' : "
            "'JupyterLab Dark')", arg=light)
        self.page.wait_for_timeout(400)  # the theme's stylesheet applies

    def snap(self, name: str) -> None:
        """The page as a user sees it now, in the light and the dark theme."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for theme, suffix in (("JupyterLab Light", "light"), ("JupyterLab Dark", "dark")):
            self.set_theme(theme)
            path = SCREENSHOTS / f"{name}-{suffix}.png"
            self.page.screenshot(path=str(path))
            self.shots.append(path)
        self.set_theme("JupyterLab Light")


@pytest.fixture(scope="module")
def ui(chromium_path: str, lab: Lab) -> Iterator[UI]:
    from playwright.sync_api import expect, sync_playwright

    for old in SCREENSHOTS.glob("*.png"):
        old.unlink()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, headless=True,
                                     args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(30_000)
            # a loaded 2-core machine can take longer than expect's 5 s to paint a step
            expect.set_options(timeout=20_000)
            state = UI(page=page, lab=lab)
            page.on("console", lambda m: state.console_errors.append(
                f"console: {m.text} @ {m.location.get('url', '')}") if m.type == "error" else None)
            page.on("pageerror", lambda e: state.console_errors.append(f"pageerror: {e}"))
            page.goto(lab.url)
            expect(page.locator("#jp-main-dock-panel")).to_be_visible(timeout=60_000)
            page.wait_for_function("() => window.jupyterapp && window.jupyterapp.commands"
                                   ".hasCommand('aigis:open-chat')", timeout=60_000)
            # the layout restorer has put the saved layout back (else it may undo a step)
            page.evaluate("() => window.jupyterapp.restored.then(() => true)")
            # then it focuses the launcher: a palette opened before that would lose the focus
            # to it, and close
            with contextlib.suppress(AssertionError):
                expect(page.locator(".jp-Launcher")).to_be_focused(timeout=15_000)
            yield state
        finally:
            browser.close()
    unexpected = [e for e in state.console_errors
                  if not any(re.search(p, e) for p, _ in ALLOWED_CONSOLE_ERRORS)]
    print(f"\nscreenshots: {SCREENSHOTS} ({len(state.shots)} files); timings: "
          + ", ".join(f"{k} {v:.1f} s" for k, v in state.timings.items()))
    assert not unexpected, "browser console errors:\n" + "\n".join(unexpected)


@pytest.fixture(autouse=True)
def _picture_of_a_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    """When a browser step fails, keep what the page showed at that moment."""
    failed = request.session.testsfailed
    yield
    if request.session.testsfailed > failed and "ui" in request.fixturenames:
        state = request.getfixturevalue("ui")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"FAILED-{request.node.name}.png"
        with contextlib.suppress(Exception):
            state.page.screenshot(path=str(path))
            print(f"\nthe page when {request.node.name} failed: {path}")


def _widen_sidebar(ui: UI, width: int = 430) -> None:
    """Drag the left sidebar's edge, as a user does, so the screenshots are readable."""
    handle = ui.page.locator("#jp-main-split-panel > .lm-SplitPanel-handle").first
    box = handle.bounding_box()
    if box is None:
        return
    y = box["y"] + box["height"] / 2
    ui.page.mouse.move(box["x"] + box["width"] / 2, y)
    ui.page.mouse.down()
    ui.page.mouse.move(width, y, steps=8)
    ui.page.mouse.up()


# -- the steps, in order (each builds on the previous one) ------------------------------------

@pytest.mark.browser
@pytest.mark.slow
def test_open_the_panel_from_the_command_palette(ui: UI) -> None:
    from playwright.sync_api import expect

    page = ui.page
    expect(page.locator("#aigis-chat")).to_have_count(1)
    expect(page.locator("#aigis-chat")).to_be_hidden()  # in the sidebar, not open yet
    page.keyboard.press("Control+Shift+C")
    palette = page.locator("#command-palette")
    expect(palette).to_be_visible()
    page.keyboard.type("Open Aigis Chat")
    expect(palette.locator(".lm-CommandPalette-item.lm-mod-active")).to_contain_text(
        "Open Aigis Chat")
    page.keyboard.press("Enter")
    expect(ui.panel).to_be_visible()
    _widen_sidebar(ui)
    expect(ui.panel.get_by_text("Ask your databases questions in plain language.")).to_be_visible()
    _assert_every_control_is_named(ui)
    ui.snap("01-panel-opened")


@pytest.mark.browser
@pytest.mark.slow
def test_manage_connections(ui: UI) -> None:
    from playwright.sync_api import expect

    panel = ui.panel
    panel.get_by_role("button", name="Add a connection").click()
    form = panel.get_by_role("form", name="New connection")
    form.get_by_label("Name", exact=True).fill("demo")
    form.get_by_label("Type").select_option("sqlite")
    form.get_by_label("Database file").fill(str(ui.lab.demo_db))
    _assert_every_control_is_named(ui)
    ui.snap("02-connection-form")
    form.get_by_role("button", name="Test and save").click()
    demo = panel.get_by_role("listitem", name="Connection demo")
    expect(demo).to_be_visible()
    demo.get_by_role("button", name="Test demo").click()
    expect(demo.get_by_role("status")).to_contain_text("Connected: sqlite")

    # a PostgreSQL server that does not answer: the test fails inline, saving is still possible
    panel.get_by_role("button", name="Add a connection").click()
    form = panel.get_by_role("form", name="New connection")
    form.get_by_label("Name", exact=True).fill("warehouse")
    form.get_by_label("Type").select_option("postgres")
    form.get_by_label("Host").fill("127.0.0.1")
    form.get_by_label("Port").fill(str(free_port()))  # nothing listens there
    form.get_by_label("Database", exact=True).fill("sales")
    form.get_by_label("User name").fill("analyst")
    form.get_by_label("Password").fill(FORM_PASSWORD)
    form.get_by_role("button", name="Test and save").click()
    expect(form.get_by_role("alert")).to_be_visible(timeout=30_000)
    form.get_by_role("button", name="Save without testing").click()
    warehouse = panel.get_by_role("listitem", name="Connection warehouse")
    expect(warehouse).to_contain_text("password set")

    # the password is write-only: editing shows only that one is set
    warehouse.get_by_role("button", name="Edit warehouse").click()
    form = panel.get_by_role("form", name="Edit connection warehouse")
    password = form.get_by_label("Password", exact=True)
    expect(password).to_have_value("")
    expect(password).to_have_attribute("type", "password")
    expect(form).to_contain_text("A password is saved")
    assert FORM_PASSWORD not in ui.page.content()
    form.get_by_label("Host").fill("localhost")
    form.get_by_role("button", name="Test and save").click()
    expect(form.get_by_role("alert")).to_be_visible(timeout=30_000)
    form.get_by_role("button", name="Save without testing").click()
    expect(warehouse).to_contain_text("localhost")
    expect(warehouse).to_contain_text("password set")  # kept: the field was left empty
    ui.snap("03-connections")

    # delete a third one, after the confirmation dialog
    panel.get_by_role("button", name="Add a connection").click()
    form = panel.get_by_role("form", name="New connection")
    form.get_by_label("Name", exact=True).fill("spare")
    form.get_by_label("Type").select_option("sqlite")
    form.get_by_label("Database file").fill(str(ui.lab.demo_db))
    form.get_by_role("button", name="Test and save").click()
    spare = panel.get_by_role("listitem", name="Connection spare")
    spare.get_by_role("button", name="Delete spare").click()
    ui.page.locator(".jp-Dialog").get_by_role("button", name="Delete").click()
    expect(spare).to_have_count(0)
    names = sorted(c["name"] for c in ui.lab.api("GET", "connections"))
    assert names == ["demo", "warehouse"]
    panel.get_by_role("button", name="Back to the chat").click()


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.local_model
def test_no_model_selected_then_the_local_model_answers(ui: UI) -> None:
    from playwright.sync_api import expect

    panel = ui.panel
    panel.get_by_role("button", name="New chat").first.click()
    bar = panel.get_by_role("group", name="Thread settings")
    model_button = bar.get_by_role("button", name=re.compile("^Model:"))
    expect(model_button).to_have_accessible_name("Model: No model selected")
    no_model = bar.locator(".jp-AigisChat-noModel")
    expect(no_model).to_have_text("No model selected")
    color = no_model.evaluate("e => getComputedStyle(e).color")
    red = ui.page.evaluate("() => getComputedStyle(document.body)"
                           ".getPropertyValue('--jp-error-color1').trim()")
    assert _rgb(color) == _rgb(red), (color, red)
    # pick the connection in the thread's picker
    bar.get_by_role("button", name=re.compile("^Connection:")).click()
    bar.get_by_role("option", name=re.compile("^demo")).click()
    expect(bar.get_by_role("button", name="Connection: demo")).to_be_visible()

    # asking without a model: the error says so, and its action is a button
    box = ui.question_box()
    box.fill("How many customers are there?")
    box.press("Enter")
    error = panel.get_by_role("log", name="Messages").get_by_role("alert").last
    expect(error).to_contain_text("No model selected")
    ui.snap("04-no-model-selected")
    error.get_by_role("button", name="Pick a model").click()
    models = bar.get_by_role("listbox", name="Model")
    expect(models).to_be_visible()
    unavailable = models.get_by_role("option", name=re.compile("^gpt-5"))
    expect(unavailable).to_have_attribute("aria-disabled", "true")
    expect(unavailable).to_contain_text("OPENAI_API_KEY")  # how to enable it
    _assert_every_control_is_named(ui)
    ui.snap("05-model-picker")
    models.get_by_role("option", name=re.compile("^local")).click()
    expect(model_button).to_have_accessible_name("Model: local")
    expect(no_model).to_have_count(0)

    # the embedded llama.cpp model, for real
    t0 = time.monotonic()
    box.fill("How many customers are there?")
    box.press("Enter")
    turn = ui.turn("How many customers are there?")
    expect(turn).to_have_attribute("data-running", "false", timeout=LOCAL_TURN_TIMEOUT)
    ui.timings["local model turn"] = time.monotonic() - t0
    expect(turn.get_by_role("alert")).to_have_count(0)
    customers = _scalar(ui.lab.demo_db, "SELECT COUNT(*) FROM customers")
    table = turn.get_by_role("group", name="Result table")
    expect(table.locator("td")).to_have_text([str(customers)])
    expect(turn.get_by_role("group", name="Answer")).to_contain_text(str(customers))
    turn.locator("details.jp-AigisChat-sql summary").click()
    expect(turn.get_by_label("SQL", exact=True)).to_contain_text(re.compile("count", re.I))
    ui.snap("06-local-model-answer")


@pytest.mark.browser
@pytest.mark.slow
def test_tokens_stream_with_progress_then_a_table_and_a_chart(ui: UI) -> None:
    from playwright.sync_api import expect

    panel = ui.panel
    bar = panel.get_by_role("group", name="Thread settings")
    bar.get_by_role("button", name=re.compile("^Model:")).click()
    bar.get_by_role("option", name=re.compile("^scripted")).click()
    expect(bar.get_by_role("button", name="Model: scripted")).to_be_visible()
    # record every change of the last turn as the page renders it
    ui.page.evaluate("""() => {
        const root = document.querySelector('#aigis-chat .jp-AigisChat-messages');
        window.__aigisLog = [];
        const seen = () => {
            const turns = root.querySelectorAll('article');
            const t = turns[turns.length - 1];
            const answer = t && t.querySelector('.jp-AigisChat-markdown');
            const status = t && t.querySelector('.jp-AigisChat-progress');
            window.__aigisLog.push({at: performance.now(), running: t && t.dataset.running,
                                    text: answer ? answer.innerText.trim() : '',
                                    status: status ? status.innerText.trim() : ''});
        };
        window.__aigisObserver = new MutationObserver(seen);
        window.__aigisObserver.observe(root, {subtree: true, childList: true,
                                              characterData: true, attributes: true});
    }""")
    box = ui.question_box()
    # Shift+Enter breaks the line, Enter sends
    asked = len(ui.lab.api("GET", f"chat/{_open_thread_id(ui)}"))
    box.fill("")
    box.type("How many customers are in each segment?")
    box.press("Shift+Enter")
    box.type("Show a bar chart.")
    expect(box).to_have_value("How many customers are in each segment?\nShow a bar chart.")
    assert len(ui.lab.api("GET", f"chat/{_open_thread_id(ui)}")) == asked  # nothing sent
    box.fill(SEGMENTS_QUESTION)
    box.press("Enter")
    expect(box).to_have_value("")
    turn = ui.turn(SEGMENTS_QUESTION)
    expect(turn.get_by_role("status")).to_be_visible()
    expect(turn.get_by_role("group", name="Answer")).to_contain_text("There are 3 segments.")
    expect(panel.get_by_role("button", name="Stop")).to_be_visible()
    ui.snap("07-streaming")
    expect(turn).to_have_attribute("data-running", "false", timeout=60_000)
    log = ui.page.evaluate(
        "() => { window.__aigisObserver.disconnect(); return window.__aigisLog; }")
    final = log[-1]["text"]
    assert final.startswith("There are 3 segments.") and final.endswith("are consumers.")
    partial = {e["text"] for e in log if e["running"] == "true" and 0 < len(e["text"]) < len(final)}
    assert len(partial) >= 5, f"the answer did not arrive piece by piece: {sorted(partial)}"
    first_text = min(e["at"] for e in log if e["text"])
    done = min(e["at"] for e in log if e["running"] == "false")
    assert done - first_text > 500, "tokens showed only at the end"
    phases = {e["status"].rstrip("…") for e in log if e["status"]}
    assert "Answering" in phases and len(phases) >= 2, phases

    # the result through JupyterLab's renderers: an HTML table and a Vega-Lite chart
    table = turn.get_by_role("group", name="Result table")
    expect(table.locator("table.dataframe tbody tr")).to_have_count(3)
    expect(table.locator("th")).to_have_text(["segment", "customers"])
    expect(table.locator("tbody tr").first.locator("td")).to_have_text(["Consumer", "430"])
    chart = turn.get_by_role("group", name="Chart")
    expect(chart.locator(".vega-embed")).to_be_visible()
    expect(chart.locator(".vega-embed svg, .vega-embed canvas").first).to_be_visible()
    turn.locator("details.jp-AigisChat-sql summary").click()
    expect(turn.get_by_label("SQL", exact=True)).to_contain_text("GROUP BY segment")
    turn.get_by_role("button", name="Copy SQL").click()
    expect(turn.get_by_role("button", name="SQL copied")).to_be_visible()
    _assert_every_control_is_named(ui)
    ui.snap("08-table-and-chart")


@pytest.mark.browser
@pytest.mark.slow
def test_insert_the_answer_into_a_notebook_and_run_it(ui: UI) -> None:
    from playwright.sync_api import expect

    page = ui.page
    page.locator(".jp-LauncherCard[data-category='Notebook']").first.click()
    notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    expect(notebook).to_be_visible()
    expect(page.locator(".jp-StatusBar-TextItem", has_text=re.compile(r"\| Idle$"))).to_have_count(
        1, timeout=90_000)
    turn = ui.turn(SEGMENTS_QUESTION)
    turn.get_by_role("button", name="Insert into notebook").click()
    sources = page.wait_for_function("""() => {
        const nb = window.jupyterapp.shell.currentWidget?.content;
        const cells = nb?.model ? nb.model.toJSON().cells : [];
        const src = cells.map(c => Array.isArray(c.source) ? c.source.join('') : c.source);
        return src.length >= 2 && src[1].startsWith('%%aigis') ? src : null;
    }""").json_value()
    sql = _stored_turn(ui.lab, SEGMENTS_QUESTION)["payload"]["sql"]
    assert sources[0].strip() == "%load_ext aigis_jupyter"
    assert sources[1] == f"%%aigis sql --conn demo -o df --chart bar\n{sql.strip()}\n"
    ui.snap("09-inserted")

    t0 = time.monotonic()
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    outputs = notebook.locator(".jp-Cell").nth(1).locator(".jp-OutputArea-output")
    expect(outputs.locator("table.dataframe")).to_be_visible(timeout=90_000)
    expect(outputs.locator(".vega-embed")).to_be_visible()
    ui.timings["inserted cells ran"] = time.monotonic() - t0

    # the kernel's DataFrame is the one the answer showed
    notebook.locator(".jp-Cell").nth(1).click()
    page.keyboard.press("Escape")
    page.keyboard.press("b")  # a new cell below, in command mode
    page.keyboard.press("Enter")
    page.keyboard.type("print(df.to_json(orient='split'))")
    page.keyboard.press("Shift+Enter")
    stdout = notebook.locator(".jp-Cell").nth(2).locator(
        ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stdout']")
    expect(stdout).to_be_visible(timeout=60_000)
    frame = json.loads(stdout.inner_text())
    shown = _stored_turn(ui.lab, SEGMENTS_QUESTION)["payload"]["table"]
    assert frame["columns"] == shown["columns"]
    assert frame["data"] == shown["rows"]
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    expect(page.locator("#jp-main-dock-panel .lm-TabBar-tab.jp-mod-dirty")).to_have_count(0)
    ui.snap("10-notebook-ran")


@pytest.mark.browser
@pytest.mark.slow
def test_stop_a_long_turn_with_the_button_and_with_escape(ui: UI) -> None:
    from playwright.sync_api import expect

    panel = ui.panel
    for how in ("button", "escape"):
        question = f"Count the orders slowly ({how})"
        box = ui.question_box()
        box.fill(question)
        box.press("Enter")
        turn = ui.turn(question)
        expect(turn.get_by_role("group", name="Answer")).to_contain_text("Counting the orders")
        stop = panel.get_by_role("button", name="Stop")
        expect(stop).to_be_visible()
        if how == "button":
            ui.snap("11-long-turn-running")
        t0 = time.monotonic()
        if how == "button":
            stop.click()
        else:
            box.press("Escape")
        expect(turn).to_have_attribute("data-running", "false", timeout=15_000)
        ui.timings[f"stop ({how})"] = time.monotonic() - t0
        expect(turn.get_by_role("note")).to_have_text("Stopped.")
        expect(panel.get_by_role("button", name="Send")).to_be_visible()
        assert turn.get_by_role("group", name="Answer").inner_text().count(
            "still counting.") < 30, "the answer ran to its end"
    ui.snap("12-stopped")
    # the thread is usable again
    box = ui.question_box()
    box.fill("And how many regions?")
    box.press("Enter")
    turn = ui.turn("And how many regions?")
    expect(turn).to_have_attribute("data-running", "false", timeout=30_000)
    expect(turn.get_by_role("group", name="Answer")).to_have_text("There are 5 regions.")


@pytest.mark.browser
@pytest.mark.slow
def test_reload_finds_the_thread_and_the_connection_again(ui: UI) -> None:
    from playwright.sync_api import expect

    page, panel = ui.page, ui.panel
    # a newer thread first in the list, then back to ours: the reload must not just open the
    # newest one
    panel.get_by_role("button", name="New chat").first.click()
    ours = panel.get_by_role("button", name=re.compile(r"^Open thread How many customers"))
    ours.first.click()
    expect(ours.first).to_have_attribute("aria-current", "true")
    title = ours.first.get_attribute("aria-label")
    threads = ui.lab.api("GET", "chat/threads")
    open_id = next(t["id"] for t in threads if f"Open thread {t['title']}" == title)
    assert threads[0]["id"] != open_id

    page.reload()
    expect(panel).to_be_visible(timeout=60_000)  # the layout restorer reopened it
    current = panel.locator("[aria-current=true]")
    expect(current).to_have_attribute("aria-label", title)
    expect(panel.get_by_role("log", name="Messages")).to_contain_text(SEGMENTS_QUESTION)
    expect(ui.turn(SEGMENTS_QUESTION).get_by_role("group", name="Result table")).to_be_visible()
    bar = panel.get_by_role("group", name="Thread settings")
    expect(bar.get_by_role("button", name="Connection: demo")).to_be_visible()
    ui.snap("13-after-reload")
    # the picked connection survived too: a new chat starts on it (there are two to choose)
    panel.get_by_role("button", name="New chat").first.click()
    expect(bar.get_by_role("button", name="Connection: demo")).to_be_visible()

    # rename a thread in place, then delete it after the confirmation dialog
    panel.get_by_role("button", name="Rename thread New chat").first.click()
    name = panel.get_by_role("textbox", name="New name of the thread")
    name.fill("Scratch")
    name.press("Enter")
    scratch = panel.get_by_role("button", name="Open thread Scratch")
    expect(scratch).to_be_visible()
    assert "Scratch" in [t["title"] for t in ui.lab.api("GET", "chat/threads")]
    ui.snap("14-thread-renamed")
    panel.get_by_role("button", name="Delete thread Scratch").click()
    page.locator(".jp-Dialog").get_by_role("button", name="Delete").click()
    expect(scratch).to_have_count(0)
    assert "Scratch" not in [t["title"] for t in ui.lab.api("GET", "chat/threads")]


@pytest.mark.browser
@pytest.mark.slow
def test_markup_from_the_model_and_the_database_stays_text(ui: UI) -> None:
    """Markup and script from a model or a database show as text in the sidebar: none runs.

    The scripted model writes HTML, script and `javascript:` URLs into its answer, its SQL,
    the result's values and column names (SQL on the demo database), a chart proposal's
    texts, and a query whose error quotes a table name; a question holds markup too. A
    second proposal also carries an `href` channel, embedding options, an expression and a
    title that would end the string Vega-Lite writes it into: the server draws that chart
    itself. No script runs (no `window.__pwned`, no dialog, no window opened), no element
    is made of the markup, the strings read as written, and the charts still draw.
    """
    from playwright.sync_api import expect

    page, panel = ui.page, ui.panel
    dialogs: list[str] = []
    popups: list[Any] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def on_popup(popup: Any) -> None:
        popups.append(popup)

    page.on("dialog", on_dialog)
    page.context.on("page", on_popup)
    try:
        panel.get_by_role("button", name="New chat").first.click()
        bar = panel.get_by_role("group", name="Thread settings")
        for picker, option in (("Connection", "demo"), ("Model", "scripted")):
            bar.get_by_role("button", name=re.compile(f"^{picker}:")).click()
            bar.get_by_role("option", name=re.compile(f"^{option}")).click()
            expect(bar.get_by_role("button", name=f"{picker}: {option}")).to_be_visible()
        for question in (TRAPPED_QUESTION, HOSTILE_QUESTION, POISONED_QUESTION):
            box = ui.question_box()
            box.fill(question)
            box.press("Enter")
            # found by its exact text: the question's markup reads as written
            expect(ui.turn(question)).to_have_attribute("data-running", "false",
                                                         timeout=60_000)

        turn = ui.turn(HOSTILE_QUESTION)
        table = turn.get_by_role("group", name="Result table")
        expect(table.locator("th")).to_have_text(HOSTILE_COLUMNS)
        expect(table.locator("tbody td:first-child")).to_have_text(HOSTILE)
        answer = turn.get_by_role("group", name="Answer")
        for text in [*HOSTILE, "<b>code</b>"]:
            expect(answer).to_contain_text(text)
        expect(answer.locator("img")).to_have_count(0)  # `![..](url)` is not fetched
        turn.locator("details.jp-AigisChat-sql summary").click()
        for text in HOSTILE:
            expect(turn.get_by_label("SQL", exact=True)).to_contain_text(text)
        # the model's chart texts and its data are Vega's to draw, the data the result's
        chart = turn.get_by_role("group", name="Chart")
        expect(chart.locator(".vega-embed .marks")).to_be_visible()
        spec = _stored_turn(ui.lab, HOSTILE_QUESTION)["payload"]["chart"]
        assert (spec["title"], spec["description"]) == (HOSTILE[0], HOSTILE[1])
        assert [r[HOSTILE_COLUMNS[0]] for r in spec["data"]["values"]] == HOSTILE
        tooltip = _hover_until_tooltip(ui, chart.locator(".vega-embed .marks"))
        expect(tooltip).to_contain_text(HOSTILE[2])  # a tooltip title of the proposal
        expect(tooltip.locator("img, iframe, svg, script, a")).to_have_count(0)
        # the chart menu has no "View Source", which writes the spec as HTML into a window
        chart.locator(".vega-embed summary").click()
        expect(chart.locator(".vega-actions a")).not_to_have_count(0)
        expect(chart.locator(".vega-actions")).not_to_contain_text("Source")
        expect(chart.locator(".vega-actions")).not_to_contain_text("Editor")
        chart.locator(".vega-embed summary").click()

        # links, embedding options and expressions never reach the page: the server drew it
        trapped = ui.turn(TRAPPED_QUESTION)
        expect(trapped.get_by_role("group", name="Chart").locator(".vega-embed .marks")
               ).to_be_visible()
        spec = _stored_turn(ui.lab, TRAPPED_QUESTION)["payload"]["chart"]
        assert "href" not in spec["encoding"] and "config" not in spec
        assert spec["usermeta"]["embedOptions"]["actions"]["source"] is False
        assert spec["title"] == TRAPPED_QUESTION  # the recommender's, titled by the question
        expect(trapped.get_by_role("group", name="Answer")).to_have_text(TRAPPED_ANSWER)

        poisoned = ui.turn(POISONED_QUESTION)
        expect(poisoned.get_by_role("alert")).to_contain_text(
            f"Table '{POISONED_TABLE}' does not exist.")
        expect(poisoned.get_by_label("SQL", exact=True)).to_contain_text(POISONED_TABLE)
        poisoned.scroll_into_view_if_needed()
        ui.snap("15-markup-stays-text")

        made = page.evaluate("""() => {
            const bad = [...document.querySelectorAll(
                'img[src="x"], iframe, svg[onload], a[href^="javascript:" i], #aigis-chat img, '
                + '#aigis-chat script, #aigis-chat object, #aigis-chat embed')];
            for (const e of document.querySelectorAll('#aigis-chat *')) {
                for (const a of e.attributes) {
                    if (a.name.startsWith('on') || /^\\s*javascript:/i.test(a.value)) {
                        bad.push(e);
                    }
                }
            }
            return bad.map(e => e.outerHTML.slice(0, 160));
        }""")
        assert not made, made
        assert page.evaluate("() => typeof window.__pwned") == "undefined"
        assert not dialogs, dialogs
        assert not popups, [p.url for p in popups]
    finally:
        page.remove_listener("dialog", on_dialog)
        page.context.remove_listener("page", on_popup)


@pytest.mark.browser
@pytest.mark.slow
def test_verify_an_answer_and_the_same_question_uses_it(ui: UI) -> None:
    """Teach the assistant: "Verify" on an answer saves its question and SQL as a verified
    query of the thread's connection (the REST API lists it), the button becomes a "Verified"
    mark, and asking the same question again gets that SQL, marked "(verified query)". A
    reload still shows both answers verified; a suggested follow-up, clicked, is asked next."""
    from playwright.sync_api import expect

    page, panel = ui.page, ui.panel
    panel.get_by_role("button", name="New chat").first.click()
    bar = panel.get_by_role("group", name="Thread settings")
    for picker, option in (("Connection", "demo"), ("Model", "scripted")):
        bar.get_by_role("button", name=re.compile(f"^{picker}:")).click()
        bar.get_by_role("option", name=re.compile(f"^{option}")).click()
        expect(bar.get_by_role("button", name=f"{picker}: {option}")).to_be_visible()
    demo = next(c for c in ui.lab.api("GET", "connections") if c["name"] == "demo")
    assert not [e for e in ui.lab.api("GET", f"connections/{demo['id']}/examples")
                if e["question"] == VERIFIED_QUESTION]

    asked = panel.locator("article").filter(has=page.get_by_text(VERIFIED_QUESTION, exact=True))
    first, second = asked.nth(0), asked.nth(1)
    box = ui.question_box()
    box.fill(VERIFIED_QUESTION)
    box.press("Enter")
    expect(first).to_have_attribute("data-running", "false", timeout=60_000)
    expect(first.get_by_role("alert")).to_have_count(0)
    summary = first.locator("details.jp-AigisChat-sql summary")
    expect(summary).to_contain_text("SQL")
    expect(summary).not_to_contain_text("verified")  # written by the model: not verified yet
    summary.click()
    expect(first.get_by_label("SQL", exact=True)).to_have_text(CATEGORIES_SQL)
    verify = first.get_by_role("button", name="Save as a verified query")
    expect(verify).to_be_enabled()
    expect(verify).to_have_text("Verify")
    expect(first.get_by_text(VERIFIED_MARK, exact=True)).to_have_count(0)
    _assert_every_control_is_named(ui)
    ui.snap("16-verify-button")

    verify.click()
    verified = first.get_by_text(VERIFIED_MARK, exact=True)
    expect(verified).to_be_visible()
    expect(verify).to_have_count(0)  # not a button any more: nothing to click twice
    expect(first.get_by_role("alert")).to_have_count(0)
    ui.snap("17-verified")
    # the REST API has it: this question, this SQL, on the thread's connection
    saved = [e for e in ui.lab.api("GET", f"connections/{demo['id']}/examples")
             if e["question"] == VERIFIED_QUESTION]
    assert len(saved) == 1, saved
    assert saved[0]["sql"].strip() == CATEGORIES_SQL
    assert saved[0]["connection_id"] == demo["id"]

    # the same question again, in the same thread: the verified query answers it
    box.fill(VERIFIED_QUESTION)
    box.press("Enter")
    expect(asked).to_have_count(2)
    expect(second).to_have_attribute("data-running", "false", timeout=60_000)
    expect(second.get_by_role("alert")).to_have_count(0)
    summary = second.locator("details.jp-AigisChat-sql summary")
    expect(summary).to_contain_text("SQL (verified query)")
    summary.click()
    expect(second.get_by_label("SQL", exact=True)).to_have_text(CATEGORIES_SQL)
    expect(second.get_by_text(VERIFIED_MARK, exact=True)).to_be_visible()
    expect(second.get_by_role("button", name="Save as a verified query")).to_have_count(0)
    messages = ui.lab.api("GET", f"chat/{_open_thread_id(ui)}")
    answers = [m for m in messages if m["role"] == "assistant"]
    assert answers[-1]["payload"]["verified"] is True, answers[-1]["payload"]
    assert answers[-1]["payload"]["sql"].strip() == CATEGORIES_SQL
    second.scroll_into_view_if_needed()
    ui.snap("18-verified-query-answers")

    # a new session: the first answer is still shown as verified (the connection's examples
    # say so), the second by its own mark
    page.reload()
    expect(panel).to_be_visible(timeout=60_000)
    expect(panel.get_by_role("log", name="Messages")).to_contain_text(VERIFIED_QUESTION)
    expect(asked).to_have_count(2)
    for turn in (first, second):
        expect(turn.get_by_text(VERIFIED_MARK, exact=True)).to_be_visible()
    expect(panel.get_by_role("button", name="Save as a verified query")).to_have_count(0)

    # a suggested follow-up, clicked, is asked as the thread's next question
    suggestion = second.get_by_role("group", name="Suggested questions").get_by_role("button")
    expect(suggestion.first).to_be_enabled()
    follow_up = suggestion.first.inner_text().strip()
    suggestion.first.click()
    asked_next = panel.get_by_role("article", name=f"Question: {follow_up}", exact=True)
    expect(asked_next).to_have_count(1)
    expect(asked_next).to_have_attribute("data-running", "false", timeout=60_000)
    questions = [m["content"] for m in ui.lab.api("GET", f"chat/{_open_thread_id(ui)}")
                 if m["role"] == "user"]
    assert questions == [VERIFIED_QUESTION, VERIFIED_QUESTION, follow_up], questions


@pytest.mark.browser
@pytest.mark.slow
def test_a_connection_keeps_its_notes(ui: UI) -> None:
    """The connection form's "Notes": typed, saved (the REST API has them), shown again when
    the connection is edited, and removed by emptying the field."""
    from playwright.sync_api import expect

    panel = ui.panel
    panel.get_by_role("button", name="Manage connections", exact=True).click()
    demo = panel.get_by_role("listitem", name="Connection demo")
    demo.get_by_role("button", name="Edit demo").click()
    form = panel.get_by_role("form", name="Edit connection demo")
    notes = form.get_by_label("Notes")
    expect(notes).to_have_value("")
    expect(notes).to_have_attribute("placeholder", re.compile("revenue means the sum of"))
    notes.fill(CONNECTION_NOTES)
    _assert_every_control_is_named(ui)
    ui.snap("19-connection-notes")
    form.get_by_role("button", name="Test and save").click()
    expect(form).to_have_count(0, timeout=30_000)  # saved: the form closed
    info = next(c for c in ui.lab.api("GET", "connections") if c["name"] == "demo")
    assert info["notes"] == CONNECTION_NOTES

    # reopened, the form shows them as saved; emptied, they are gone
    demo.get_by_role("button", name="Edit demo").click()
    expect(form.get_by_label("Notes")).to_have_value(CONNECTION_NOTES)
    ui.snap("20-connection-notes-reopened")
    form.get_by_label("Notes").fill("")
    form.get_by_role("button", name="Test and save").click()
    expect(form).to_have_count(0, timeout=30_000)
    info = next(c for c in ui.lab.api("GET", "connections") if c["name"] == "demo")
    assert not info["notes"]
    demo.get_by_role("button", name="Edit demo").click()
    expect(form.get_by_label("Notes")).to_have_value("")
    form.get_by_role("button", name="Cancel").click()
    panel.get_by_role("button", name="Back to the chat").click()


# -- helpers -----------------------------------------------------------------------------------

def _assert_every_control_is_named(ui: UI) -> None:
    """Every button, field and list option in the panel has an accessible name."""
    unnamed = ui.page.evaluate("""() => [...document.querySelectorAll(
        '#aigis-chat button, #aigis-chat textarea, #aigis-chat input, #aigis-chat select, '
        + '#aigis-chat [role=option]')]
        .filter(e => !(e.getAttribute('aria-label') || e.labels?.length
                       || e.textContent.trim()))
        .map(e => e.outerHTML.slice(0, 160))""")
    assert not unnamed, unnamed


def _hover_until_tooltip(ui: UI, marks: Any) -> Any:
    """Move the mouse over a chart, row by row, until a mark shows its tooltip."""
    marks.scroll_into_view_if_needed()
    box = marks.bounding_box()
    assert box, "the chart has no size"
    tooltip = ui.page.locator("#vg-tooltip-element.visible")
    for row in (0.5, 0.6, 0.4, 0.7, 0.3, 0.8, 0.2):
        y = box["y"] + box["height"] * row
        for step in range(41):
            ui.page.mouse.move(box["x"] + box["width"] * step / 40, y)
            if tooltip.count():
                return tooltip
    raise AssertionError("no mark of the chart showed a tooltip")


def _rgb(css: str) -> tuple[int, ...]:
    """A CSS colour (#rrggbb or rgb()) as a tuple, to compare computed and declared colours."""
    css = css.strip()
    if css.startswith("#"):
        h = css[1:]
        if len(h) == 3:
            h = "".join(c * 2 for c in h)
        return tuple(int(h[i:i + 2], 16) for i in (0, 2, 4))
    return tuple(int(float(x)) for x in re.findall(r"[\d.]+", css)[:3])


def _scalar(db: Path, sql: str) -> Any:
    import sqlite3

    with contextlib.closing(sqlite3.connect(db)) as con:
        return con.execute(sql).fetchone()[0]


def _open_thread_id(ui: UI) -> str:
    """The open thread's id, from its title in the list and the server's threads."""
    label = ui.panel.locator("[aria-current=true]").get_attribute("aria-label") or ""
    title = label.removeprefix("Open thread ")
    return next(t["id"] for t in ui.lab.api("GET", "chat/threads")
                if (t["title"] or "New chat") == title)


def _stored_turn(lab: Lab, question: str) -> dict[str, Any]:
    """The assistant message stored for `question` (its payload: sql, table, chart)."""
    for t in lab.api("GET", "chat/threads"):
        msgs = lab.api("GET", f"chat/{t['id']}")
        for i, m in enumerate(msgs):
            if m["role"] == "user" and m["content"] == question and i + 1 < len(msgs):
                return msgs[i + 1]
    raise AssertionError(f"no stored answer to {question!r}")



@pytest.mark.browser
@pytest.mark.slow
def test_the_password_typed_in_the_form_is_only_ciphertext(ui: UI) -> None:
    """After the whole sidebar flow the password typed into the form is in no page, answer,
    log or file of the server: only the store's ciphertext holds it, which opens to it."""
    from aigis_jupyter.service import AigisService
    from aigis_jupyter.settings import Settings

    assert FORM_PASSWORD not in ui.page.content()
    answers = [ui.lab.api("GET", p) for p in ("connections", "chat/threads", "audit", "health")]
    assert FORM_PASSWORD not in json.dumps(answers)
    assert FORM_PASSWORD not in ui.lab.log.read_text(errors="replace")
    base = ui.lab.log.parent
    held = [str(f) for f in base.rglob("*") if f.is_file() and FORM_PASSWORD.encode()
            in f.read_bytes()]
    assert held == []
    svc = AigisService(Settings(data_dir=base / "aigis"))  # the control: sealed, and there
    try:
        me = ui.lab.api("GET", "auth/me")["username"]
        assert svc.user(me).connection_spec("warehouse").password == FORM_PASSWORD
    finally:
        svc.close()
