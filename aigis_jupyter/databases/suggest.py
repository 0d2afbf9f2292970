"""Hints ("did you mean ...?") for a table or column the database says does not exist.

A model that misspells a name, or reads a column from the wrong table, repairs its query
far more often when the error names what exists. The names come from the cached schema
snapshot, so a suggestion costs no extra catalog query in the common case.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

from ..errors import DatabaseError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from .engines import ConnectionSpec

__all__ = ["unknown_column", "unknown_table"]


def _names(engine: Engine, spec: ConnectionSpec) -> tuple[list[str], list[tuple[str, str]]]:
    """Table names and (table, column) pairs of the cached snapshot, for suggestions."""
    try:
        from .schema import snapshot

        snap = snapshot(engine, spec)
    except Exception:  # a hint must never hide the error it explains
        return [], []
    tables = [t.name for t in snap.tables]
    columns = sorted({(t.name, c.name) for t in snap.tables for c in t.columns})
    return tables, columns


def _close(name: str, candidates: list[str]) -> list[str]:
    by_lower = {c.lower(): c for c in candidates}
    hits = difflib.get_close_matches(name.lower(), list(by_lower), n=3, cutoff=0.6)
    return [by_lower[h] for h in hits]


def unknown_table(name: str, engine: Engine, spec: ConnectionSpec) -> DatabaseError:
    """The error for a missing table, naming close matches."""
    tables, _ = _names(engine, spec)
    bare = name.split(".")[-1]
    close = _close(bare, tables)
    tip = (f" Did you mean {', '.join(close)}?" if close
           else " Check the table list of the schema.")
    return DatabaseError(f"Table {name!r} does not exist.{tip}", reason="unknown_table")


def unknown_column(name: str, msg: str, engine: Engine,
                   spec: ConnectionSpec) -> DatabaseError:
    """The error for a missing column: the table that has it, or close matches."""
    _, columns = _names(engine, spec)
    bare = name.split(".")[-1]
    text = f"Column {name!r} does not exist." if name else msg
    # the column often exists, only in another table: say which one to read or join
    owners = [f"{t}.{c}" for t, c in columns if bare and c.lower() == bare.lower()]
    if owners:
        tip = (f" It is not in the tables this query reads; it exists as "
               f"{', '.join(owners[:5])}: read or join that table.")
    else:
        close = _close(bare, sorted({c for _, c in columns})) if bare else []
        where = {c: next(f"{t}.{c}" for t, c2 in columns if c2 == c) for c in close}
        tip = f" Did you mean {', '.join(where[c] for c in close)}?" if close else ""
    return DatabaseError(text + tip, reason="unknown_column")
