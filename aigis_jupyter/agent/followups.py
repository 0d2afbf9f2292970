"""Suggested next questions: two or three follow-ups built from the schema and the result.

They are written from what exists (the result's columns, the tables the query read, their
category columns and foreign keys), so each can be answered; no model call is spent on
them. A follow-up phrased "Now ... by X" is read as one by the SQL prompt (`is_follow_up`),
so it adapts the query that just ran.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ..databases.catalog import SchemaSnapshot, Table
from ..databases.values import ValueIndex
from .prompts import name_words, plural

#: Suggestions per answer, at most.
MAX_SUGGESTIONS = 3

_NUMERIC = re.compile(r"(?i)int|real|num|dec|float|double|money")
_KEY = re.compile(r"(?i)(^id$|_id$|[a-z]Id$)")
#: A row's own label (one value per row): nothing to break a count down by.
_LABEL = re.compile(r"(?i)(^|_)(name|title)$|[a-z](Name|Title)$")


def _singular(name: str) -> str:
    w = name_words(name)
    if w.endswith("ies") and len(w) > 4:
        return w[:-3] + "y"
    if w.endswith("s") and not w.endswith("ss") and len(w) > 3:
        return w[:-1]
    return w


def _tables_read(sql: str, dialect: str | None, snap: SchemaSnapshot) -> list[Table]:
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(sql, read=dialect or None)
    except Exception:
        return []
    out = []
    for t in tree.find_all(exp.Table):
        found = snap.table(t.name)
        if found is not None and found not in out:
            out.append(found)
    return out


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def suggestions(question: str, preview: dict[str, Any] | None, sql: str | None,
                snap: SchemaSnapshot | None, *, dialect: str | None = None,
                values: ValueIndex | None = None, charted: bool = False) -> list[str]:
    """Up to three questions worth asking next."""
    out: list[str] = []
    cols = [str(c) for c in (preview or {}).get("columns") or []]
    rows = list((preview or {}).get("rows") or [])
    q = (question or "").lower()
    if rows and len(rows) > 1 and cols:
        first = rows[0]
        label = next((c for c, v in zip(cols, first, strict=False) if isinstance(v, str)), None)
        number = next((c for c, v in zip(cols, first, strict=False)
                       if _is_number(v) and not _KEY.search(c)), None)
        if label and number and not charted:
            out.append("Show this as a bar chart")
        if label and number and not re.search(r"\b(top|most|highest|largest)\b", q):
            out.append(f"Which {name_words(label)} has the highest {name_words(number)}?")
    if snap is not None and sql:
        read = _tables_read(sql, dialect, snap)
        shown = {c.lower() for c in cols}
        for t in read:
            for (table, column), vals in (values.values.items() if values else []):
                if table.split(".")[-1].lower() != t.name.lower() or column.lower() in shown:
                    continue
                if len(vals) >= 2 and name_words(column) not in q and not _LABEL.search(column):
                    out.append(f"Now break this down by {name_words(column)}")
                    break
            if len(out) >= MAX_SUGGESTIONS:
                break
        for t in read[:1]:
            for other in snap.tables:
                refs = {fk.ref_table.lower() for fk in other.foreign_keys}
                if t.name.lower() in refs and other is not t and name_words(other.name) not in q:
                    out.append(f"How many {plural(other.name)} does each {_singular(t.name)} "
                               "have?")
                    break
    seen: set[str] = set()
    unique = []
    for s in out:
        if s.lower() not in seen and s.lower().rstrip("?") != q.rstrip("?"):
            seen.add(s.lower())
            unique.append(s)
    return unique[:MAX_SUGGESTIONS]


def starters(snap: SchemaSnapshot, tables: Sequence[Table] | None = None) -> list[str]:
    """Questions to start with, for a connection's tables (a greeting, a schema question)."""
    out = []
    for t in list(tables or snap.tables)[:6]:
        out.append(f"How many {plural(t.name)} are there?")
        if len(out) >= MAX_SUGGESTIONS:
            break
    return out
