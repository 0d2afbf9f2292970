"""Value indexes: the few distinct values of a connection's short text columns.

"How many customers are in canada?" needs `Country = 'Canada'`; a model that never saw
the column's values guesses `'canada'`, `'CA'` or a column that does not exist. For each
text column with few distinct values (at most `VALUES_PER_COLUMN`), the values are read
once per schema fingerprint, through the guard like any query, and matched against the
question's words (`agent.hints`).

Bounded on every side: columns that look like personal data (emails, phone numbers,
names, addresses) are never read; each column's query has a short timeout and the whole
index a time budget; values are cut to `VALUE_CHARS`. The index is cached per (connection,
fingerprint), beside the schema snapshot it was built from.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .catalog import Column, SchemaSnapshot, Table

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from .engines import ConnectionSpec

log = logging.getLogger(__name__)

__all__ = ["ValueIndex", "clear_cache", "looks_personal", "table_expr", "value_index"]

#: A column with more distinct values than this is not a category: not indexed.
VALUES_PER_COLUMN = 50
#: Characters kept of one value.
VALUE_CHARS = 80
#: Columns read per connection, and seconds per column and for the whole index.
MAX_COLUMNS = 200
COLUMN_TIMEOUT_S = 2.0
BUDGET_S = 8.0

_TEXT = re.compile(r"(?i)char|text|string|clob|enum")
#: Names of columns holding personal data or secrets: their values never leave the database
#: for a prompt.
_PERSONAL = re.compile(
    r"(?i)e[-_]?mail|phone|fax|mobile|cell|address|street|zip|postal|postcode|ssn|"
    r"social|passport|licen[cs]e|birth|dob|password|passwd|secret|token|api[-_]?key|iban|"
    r"account|card|ccn|cvv|salary|first[-_]?name|last[-_]?name|surname|full[-_]?name|"
    r"given[-_]?name|family[-_]?name|username|login|ip[-_]?addr|^ip$|latitude|"
    r"longitude|note|comment|description|bio$|url|uri|path|hash")
#: Tables of people: their plain `name` is a person's name.
_PEOPLE = re.compile(
    r"(?i)customer|client|employee|user|person|people|contact|member|patient|student|staff|"
    r"author|artist|account|buyer|seller|supplier|vendor|owner|manager|rep|driver|guest")


def looks_personal(column: str, table: str = "") -> bool:
    """Whether a column's name says it holds personal data or free text (a bare `name` is
    personal in a table of people, a category elsewhere: a region's, a genre's)."""
    if re.fullmatch(r"(?i)(full)?[-_]?name", column):
        return bool(_PEOPLE.search(table)) or not table
    return bool(_PERSONAL.search(column))


@dataclass
class ValueIndex:
    """`values[(table, column)]` = the column's distinct values, most frequent first."""

    values: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    complete: bool = True  # False when the time budget ran out before every column

    def __len__(self) -> int:
        return sum(len(v) for v in self.values.values())


def _candidates(snap: SchemaSnapshot) -> list[tuple[Table, Column]]:
    out = []
    for t in snap.tables:
        keys = {c for fk in t.foreign_keys for c in fk.columns}
        for c in t.columns:
            if (c.primary_key or c.name in keys or not _TEXT.search(c.type or "")
                    or looks_personal(c.name, t.name)):
                continue
            out.append((t, c))
    return out[:MAX_COLUMNS]


def table_expr(snap: SchemaSnapshot, t: Table) -> Any:
    """The table as a sqlglot expression, every part quoted (its case kept)."""
    from sqlglot import exp

    schema = t.schema if t.schema and t.schema != snap.default_schema else None
    return exp.Table(this=exp.to_identifier(t.name, quoted=True),
                     db=exp.to_identifier(schema, quoted=True) if schema else None)


def _query(snap: SchemaSnapshot, t: Table, c: Column, dialect: str) -> str:
    from sqlglot import exp

    table = table_expr(snap, t)
    col = exp.column(c.name, quoted=True)
    q = (exp.select(col).from_(table).where(exp.Not(this=exp.Is(this=col, expression=exp.Null())))
         .group_by(col).order_by(exp.Ordered(this=exp.Count(this=exp.Star()), desc=True))
         .limit(VALUES_PER_COLUMN + 1))
    return q.sql(dialect=dialect)


def build(engine: Engine, spec: ConnectionSpec, snap: SchemaSnapshot) -> ValueIndex:
    """Read the values of every candidate column within the budget (errors skip a column)."""
    from .execute import run_query

    dialect = spec.dialect.sqlglot_dialect
    index = ValueIndex()
    deadline = time.monotonic() + BUDGET_S
    for t, c in _candidates(snap):
        left = deadline - time.monotonic()
        if left <= 0.05:
            index.complete = False
            break
        try:
            res = run_query(engine, spec, _query(snap, t, c, dialect),
                            max_rows=VALUES_PER_COLUMN + 1,
                            timeout_s=min(COLUMN_TIMEOUT_S, left))
        except Exception as exc:  # a hint is never worth a failed question
            log.debug("no values for %s.%s: %s", t.name, c.name, exc)
            continue
        if res.truncated or res.row_count > VALUES_PER_COLUMN:
            continue
        values = [str(v)[:VALUE_CHARS] for (v, *_) in res.head(VALUES_PER_COLUMN)
                  if isinstance(v, str) and v.strip()]
        if values:
            index.values[(snap.qualified(t), c.name)] = values
    return index


_cache: OrderedDict[tuple[str, str], ValueIndex] = OrderedDict()
_lock = threading.Lock()
_CACHE_SIZE = 64


def clear_cache(conn_id: str | None = None) -> None:
    with _lock:
        for key in [k for k in _cache if conn_id is None or k[0] == conn_id]:
            del _cache[key]


def value_index(engine: Engine, spec: ConnectionSpec, snap: SchemaSnapshot) -> ValueIndex:
    """The connection's index for this schema fingerprint (built on the first miss)."""
    key = (spec.id, snap.fingerprint)
    with _lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit
    index = build(engine, spec, snap)
    with _lock:
        for old in [k for k in _cache if k[0] == spec.id]:
            del _cache[old]
        _cache[key] = index
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return index
