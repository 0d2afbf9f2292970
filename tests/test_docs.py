"""The README's security model names, for each promise, the tests that prove it: every test
it names exists, so a renamed or deleted test cannot leave a promise unproved in silence."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def test_every_promise_of_the_security_model_names_tests_that_exist() -> None:
    """Each row of the README's "Security model" table names at least one test, and each
    named test is a test function (or a module) that exists."""
    rows = [line for line in section("Security model").splitlines()
            if line.startswith("| ") and not line.startswith(("| Promise", "|---"))]
    assert len(rows) >= 8, rows
    missing = []
    for row in rows:
        refs = re.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?`", row)
        assert refs, f"no test named for: {row}"
        for path, name in refs:
            file = ROOT / path
            if not file.is_file():
                missing.append(path)
                continue
            if name:
                tree = ast.parse(file.read_text())
                names = {n.name for n in ast.walk(tree)
                         if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
                if name not in names:
                    missing.append(f"{path}::{name}")
    assert missing == []
