"""Errors speak neutrally in the core and in each door's own terms at the door.

The core says what happened and attaches a structured `action`; the notebook renders it as
`%aigis …` commands, the CLI as `aigis …` commands. No core module names a door's command.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell

from aigis_jupyter.cli import action_text as cli_action
from aigis_jupyter.cli import error_text
from aigis_jupyter.errors import ACTION_KINDS, AigisError, NotFound
from aigis_jupyter.rendering import action_text as notebook_action
from aigis_jupyter.service.core import AigisService

PKG = Path(__file__).resolve().parent.parent / "aigis_jupyter"
DOOR_FILES = {"magics.py", "commands.py", "teach_commands.py", "widgets.py", "rendering.py",
              "cli.py", "hub.py"}
DOOR_DIRS = {"client", "server", "hub"}
#: What a door's command looks like: a magic, a REST route, a CLI command.
DOOR_WORDS = re.compile(r"%%?aigis|\b(POST|PUT|DELETE|GET) /|`aigis |"
                        r"\baigis (connections|conn|keys|db|demo|health)\b")


def core_files() -> list[Path]:
    out = []
    for p in PKG.rglob("*.py"):
        rel = p.relative_to(PKG)
        if rel.parts[0] in DOOR_DIRS or rel.name in DOOR_FILES or rel == Path("__init__.py"):
            continue
        out.append(p)
    return out


@pytest.mark.parametrize("path", core_files(), ids=lambda p: str(p.relative_to(PKG)))
def test_no_core_text_names_a_door_command(path: Path) -> None:
    hits = [m.group(0) for m in DOOR_WORDS.finditer(path.read_text())]
    assert not hits, f"{path.name} speaks a door's language: {hits}"


def test_the_scan_catches_door_words() -> None:
    for text in ("run `aigis keys rotate`", "use %aigis model use NAME", "POST /chat/1/model"):
        assert DOOR_WORDS.search(text)
    assert not DOOR_WORDS.search("aigis could not parse this statement")


@pytest.mark.parametrize("kind", sorted(ACTION_KINDS))
def test_every_action_has_a_rendering_in_each_door(kind: str) -> None:
    act = {"kind": kind, "choices": ["local"], "name": "OPENAI_API_KEY"}
    assert notebook_action(act), f"the notebook cannot render {kind}"
    assert cli_action(act), f"the CLI cannot render {kind}"


def test_the_same_core_error_in_the_notebook_and_the_cli(settings, tmp_path: Path) -> None:
    """A missing connection, raised once by the core, read in each door's own words."""
    from aigis_jupyter.magics import AigisCellError, AigisMagics

    svc = AigisService(settings)
    scope = svc.user("alice", is_admin=True)
    with pytest.raises(NotFound) as caught:
        scope.test_connection("nowhere")
    core: AigisError = caught.value
    assert core.action == {"kind": "add_connection"}
    assert "%aigis" not in core.message and "aigis connections" not in core.message

    shell = InteractiveShell.instance()
    try:
        shell.register_magics(AigisMagics(shell=shell, scope=scope))
        res = shell.run_cell("%aigis connections test nowhere")
        assert isinstance(res.error_in_exec, AigisCellError)
        notebook = str(res.error_in_exec)
    finally:
        InteractiveShell.clear_instance()
        svc.close()
    assert core.message in notebook and "%aigis connections list" in notebook

    p = subprocess.run([sys.executable, "-m", "aigis_jupyter.cli", "--user", "alice",
                        "connections", "test", "nowhere"], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 1
    assert core.message in p.stderr and "aigis connections list" in p.stderr
    assert "%aigis" not in p.stderr
    assert error_text(core) in p.stderr
