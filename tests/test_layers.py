"""The core never imports a front door or Jupyter; front doors never import each other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "aigis_jupyter"
FRONT_DOORS = {"magics", "widgets", "rendering", "client", "server", "hub", "cli"}
ENTRY_POINTS = {"__init__"}  # Jupyter's discovery hooks, which only import lazily
JUPYTER = {"IPython", "ipywidgets", "ipykernel", "jupyter_server", "jupyter_core",
           "jupyterhub", "tornado", "traitlets", "notebook", "jupyterlab"}


def imports(path: Path) -> set[str]:
    """Absolute top-level module names and package-relative module names imported."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: name the sibling module
                mod = (node.module or "").split(".")[0]
                found |= {f".{mod}"} if mod else {f".{a.name}" for a in node.names}
            elif node.module:
                found.add(node.module.split(".")[0])
                if node.module.startswith("aigis_jupyter."):
                    found.add("." + node.module.split(".")[1])
    return found


def core_modules() -> list[Path]:
    return [p for p in PKG.rglob("*.py")
            if p.relative_to(PKG).parts[0].removesuffix(".py") not in FRONT_DOORS | ENTRY_POINTS
            and "migrations" not in p.parts]


@pytest.mark.parametrize("path", core_modules(), ids=lambda p: str(p.relative_to(PKG)))
def test_core_has_no_jupyter_and_no_front_door(path: Path) -> None:
    names = imports(path)
    assert not names & JUPYTER, f"{path.name} imports {names & JUPYTER}"
    assert not {n.lstrip(".") for n in names if n.startswith(".")} & FRONT_DOORS


def test_magics_do_not_import_other_front_doors() -> None:
    names = {n.lstrip(".") for n in imports(PKG / "magics.py") if n.startswith(".")}
    assert not names & {"server", "hub", "cli"}
