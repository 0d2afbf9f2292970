"""Questions about the database itself ("what tables are there?", "what columns does
orders have?"), answered from the schema snapshot: no SQL to write, nothing to guess.

A new user's first question is often about the schema. Asked of the model, it becomes a
query on a table called `tables`; read from the snapshot, it is always right.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..databases.catalog import SchemaSnapshot, Table

#: Tables named in an answer at most (the table event carries all of them).
NAMED_TABLES = 30

_TABLES = re.compile(
    r"(?i)\b(what|which|list|show|name|tell|give|see|how many|are there|do (?:we|you|i) have)"
    r"\b[^?.!]*\btables?\b|\btables?\b[^?.!]*\b(are there|exist|do (?:we|you|i) have)\b"
    r"|\b(describe|explain|show)\b[^?.!]*\b(database|schema)\b"
    r"|\bwhat(?:'s| is)\b[^?.!]*\bin (?:the|this|my|our) database\b")
_COLUMNS = re.compile(r"(?i)\b(columns?|fields?|attributes|structure|describe)\b")
_DATA_WORDS = re.compile(r"(?i)\b(rows?|records?|most|least|average|total|sum|per|each|by)\b")


@dataclass(frozen=True)
class SchemaQuestion:
    kind: str  # "tables" or "columns"
    table: Table | None = None


def _mentioned(question: str, snap: SchemaSnapshot) -> Table | None:
    words = {w.lower() for w in re.findall(r"[A-Za-z_][\w.]*", question)}
    for t in snap.tables:
        name = t.name.lower()
        forms = {name, f"{name}s", name.rstrip("s"), snap.qualified(t).lower()}
        if forms & words:
            return t
    return None


def schema_question(question: str, snap: SchemaSnapshot) -> SchemaQuestion | None:
    """What the question asks of the schema, if it is about the schema at all."""
    table = _mentioned(question, snap)
    if table is not None and _COLUMNS.search(question) and not _DATA_WORDS.search(question):
        return SchemaQuestion("columns", table)
    if _TABLES.search(question) and table is None and not _DATA_WORDS.search(
            question.replace("how many tables", "")):
        return SchemaQuestion("tables")
    return None


def describe(q: SchemaQuestion, snap: SchemaSnapshot) -> tuple[dict[str, Any], str]:
    """(a table preview, the answer in words) for a schema question."""
    if q.kind == "columns" and q.table is not None:
        t = q.table
        refs = {c: f"{fk.ref_table}.{rc}" for fk in t.foreign_keys
                for c, rc in zip(fk.columns, fk.ref_columns, strict=False)}
        rows = [[c.name, c.type, "PK" if c.primary_key else ("FK" if c.name in refs else ""),
                 refs.get(c.name, "")] for c in t.columns]
        names = ", ".join(c.name for c in t.columns)
        linked = sorted({fk.ref_table for fk in t.foreign_keys})
        text = (f"The {kind_word(t)} {snap.qualified(t)} has {len(t.columns)} "
                f"column{'s' if len(t.columns) != 1 else ''}: {names}.")
        if linked:
            text += f" It references {', '.join(linked)}."
        return _preview(["column", "type", "key", "references"], rows), text
    tables = list(snap.tables)
    rows = [[snap.qualified(t), t.kind, len(t.columns),
             ", ".join(sorted({fk.ref_table for fk in t.foreign_keys}))] for t in tables]
    n = len(tables)
    shown = ", ".join(snap.qualified(t) for t in tables[:NAMED_TABLES])
    more = f", and {n - NAMED_TABLES} more" if n > NAMED_TABLES else ""
    text = (f"The database has {n} table{'s' if n != 1 else ''}: {shown}{more}."
            if n else "The database has no tables this connection can see.")
    return _preview(["table", "kind", "columns", "references"], rows), text


def kind_word(t: Table) -> str:
    return "view" if t.kind == "view" else "table"


def _preview(columns: list[str], rows: list[list[Any]]) -> dict[str, Any]:
    return {"columns": columns, "rows": rows, "row_count": len(rows), "truncated": False}
