"""The package's layering: the core imports no Jupyter and no door, doors never import each
other, and no module depends on itself through a cycle (imports under TYPE_CHECKING are
types, not dependencies, and do not count)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "aigis_jupyter"
#: Each door, by the top-level modules or subpackages it consists of.
DOORS = {
    "notebook": {"magics", "commands", "widgets", "rendering"},
    "server": {"server"},
    "hub": {"hub"},
    "cli": {"cli"},
}
#: Below the doors, above the core: how a door reaches the service.
CLIENTS = {"client"}
ENTRY_POINTS = {"__init__"}  # Jupyter's discovery hooks, which only import lazily
JUPYTER = {"IPython", "ipywidgets", "ipykernel", "jupyter_server", "jupyter_core",
           "jupyterhub", "tornado", "traitlets", "notebook", "jupyterlab"}
MAX_LINES = 530


def module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node except those under `if TYPE_CHECKING:`."""
    out: list[ast.AST] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        out.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return out


def imports(path: Path) -> set[str]:
    """Fully qualified modules this file imports at run time (package modules resolved)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            subs = {f"{mod}.{a.name}" for a in node.names}
            known = subs & _files()
            # `from . import events` depends on the submodule, not on the package's __init__
            found |= known if known else {mod}
    return found


def _files() -> set[str]:
    return set(package_files())


def package_files() -> dict[str, Path]:
    return {module_name(p): p for p in PKG.rglob("*.py") if "migrations" not in p.parts}


def graph() -> dict[str, set[str]]:
    files = package_files()
    return {name: {m for m in imports(path) if m in files and m != name}
            for name, path in files.items()}


def top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def door_of(module: str) -> str | None:
    return next((d for d, tops in DOORS.items() if top(module) in tops), None)


def core_modules() -> list[str]:
    return sorted(m for m in package_files() if door_of(m) is None
                  and top(m) not in CLIENTS | ENTRY_POINTS)


@pytest.mark.parametrize("module", core_modules())
def test_core_has_no_jupyter_and_no_door(module: str) -> None:
    path = package_files()[module]
    names = imports(path)
    assert not {n.split(".")[0] for n in names} & JUPYTER, f"{module} imports Jupyter"
    bad = {n for n in names if n.startswith("aigis_jupyter.")
           and (door_of(n) or top(n) in CLIENTS)}
    assert not bad, f"{module} imports a door or client: {bad}"


def test_doors_do_not_import_each_other() -> None:
    for module, deps in graph().items():
        door = door_of(module)
        if door is None:
            continue
        others = {d for d in deps if door_of(d) not in (None, door)}
        assert not others, f"{module} (door {door}) imports another door: {others}"


def test_no_import_cycles() -> None:
    g = graph()
    # modules imported by a package's __init__ re-export it; a submodule importing its own
    # package's __init__ would loop only through that, so judge modules, not packages
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(g[node]):
            if state.get(dep) == 1:
                cycle = [*stack[stack.index(dep):], dep]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for node in sorted(g):
        if node not in state:
            visit(node)


def test_the_cycle_check_can_fail(tmp_path: Path) -> None:
    """The checker itself finds a planted cycle (so a green run means something)."""
    (tmp_path / "a.py").write_text("from . import b\n")
    (tmp_path / "b.py").write_text("from .a import x\nif TYPE_CHECKING:\n    import c\n")
    global PKG
    saved = PKG
    try:
        PKG = tmp_path
        pkg = tmp_path.name
        assert graph() == {f"{pkg}.a": {f"{pkg}.b"}, f"{pkg}.b": {f"{pkg}.a"}}
        with pytest.raises(AssertionError, match="import cycle"):
            test_no_import_cycles()
    finally:
        PKG = saved


@pytest.mark.parametrize("module", sorted(package_files()))
def test_modules_stay_small(module: str) -> None:
    lines = len(package_files()[module].read_text().splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines; split it by what it holds"
