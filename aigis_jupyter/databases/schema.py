"""Schema snapshots: one catalog query per database, a cheap fingerprint, plain rendering.

Why one query: reflecting table by table costs a round trip per table, which is slow on
a remote server with thousands of tables. Each dialect instead asks its catalog once for
tables, columns, types, nullability, primary and foreign keys (`Dialect.catalog`).

Fingerprints decide whether a cached snapshot is still right, so they must be much
cheaper than the snapshot: each dialect reads a few values that change with any DDL
(`Dialect.fingerprint`; see the dialect modules for how). Snapshots are cached by
(connection id, fingerprint).

Rendering here is the whole snapshot, one compact line per table; choosing the tables a
question needs is the agent's business (`agent/context.py`), which reuses these lines.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from .catalog import Column, ForeignKey, SchemaSnapshot, Table

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from .engines import ConnectionSpec

__all__ = [
    "Column",
    "ForeignKey",
    "SchemaSnapshot",
    "Table",
    "clear_cache",
    "describe",
    "fingerprint",
    "render",
    "render_header",
    "render_table",
    "short_type",
    "snapshot",
    "table_names",
]


def fingerprint(engine: Engine, spec: ConnectionSpec) -> tuple[str, str | None]:
    """(fingerprint, default schema) from one cheap query; see the module doc."""
    dialect = spec.dialect
    parts, default_schema = dialect.fingerprint(engine, spec)
    digest = hashlib.sha256("|".join([dialect.name, *parts]).encode()).hexdigest()[:20]
    return digest, default_schema


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a snapshot's objects are built.

    A 2,000-table snapshot allocates ~100,000 objects at once (rows, then columns), which
    triggers full collections that rescan everything alive, again and again: with the
    collector paused, building it takes a third of the time. Nothing built here is cyclic.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _load(engine: Engine, spec: ConnectionSpec, fp: str,
          default_schema: str | None) -> SchemaSnapshot:
    dialect = spec.dialect
    with _gc_paused():
        tables = dialect.catalog(engine, spec)
        ordered = sorted(tables, key=lambda t: ((t.schema or "").lower(), t.name.lower()))
    return SchemaSnapshot(dialect=dialect.name, tables=ordered, fingerprint=fp,
                          default_schema=default_schema)


# --------------------------------------------------------------------------- cache

_CACHE_SIZE = 64
_cache: OrderedDict[tuple[str, str], SchemaSnapshot] = OrderedDict()
_cache_lock = threading.Lock()


def clear_cache(conn_id: str | None = None) -> None:
    with _cache_lock:
        for key in [k for k in _cache if conn_id is None or k[0] == conn_id]:
            del _cache[key]


def snapshot(engine: Engine, spec: ConnectionSpec, *, refresh: bool = False) -> SchemaSnapshot:
    """The schema of a connection: one fingerprint query, plus one catalog query on a miss."""
    fp, default_schema = fingerprint(engine, spec)
    key = (spec.id, fp)
    if not refresh:
        with _cache_lock:
            hit = _cache.get(key)
            if hit is not None:
                _cache.move_to_end(key)
                return hit
    snap = _load(engine, spec, fp, default_schema)
    with _cache_lock:
        for old in [k for k in _cache if k[0] == spec.id]:
            del _cache[old]
        _cache[key] = snap
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return snap


# --------------------------------------------------------------------------- rendering

_TYPE_SUBS = [
    (re.compile(r"character varying"), "varchar"),
    (re.compile(r"^character\b"), "char"),
    (re.compile(r"timestamp(\(\d+\))? without time zone"), r"timestamp\1"),
    (re.compile(r"timestamp(\(\d+\))? with time zone"), r"timestamptz\1"),
    (re.compile(r"time(\(\d+\))? without time zone"), r"time\1"),
    (re.compile(r"time(\(\d+\))? with time zone"), r"timetz\1"),
    (re.compile(r"double precision"), "double"),
    (re.compile(r"^integer\b"), "int"),
    (re.compile(r"^(tinyint|smallint|mediumint|int|bigint)\((?!1\))\d+\)"), r"\1"),
]


@lru_cache(maxsize=4096)
def short_type(t: str) -> str:
    """A column type as a prompt needs it (`character varying(80)` -> `varchar(80)`)."""
    out = (t or "").strip().lower()
    for pat, rep in _TYPE_SUBS:
        out = pat.sub(rep, out)
    return out or "?"


def render_table(snap: SchemaSnapshot, t: Table) -> str:
    """`- name(col type PK, col type -> t.col, ...) [view] -- comment`."""
    single_fk: dict[str, str] = {}
    multi: list[str] = []
    for fk in t.foreign_keys:
        ref = (f"{fk.ref_schema}.{fk.ref_table}"
               if fk.ref_schema and fk.ref_schema != (t.schema or snap.default_schema)
               else fk.ref_table)
        if len(fk.columns) == 1:
            single_fk.setdefault(fk.columns[0], f"{ref}.{fk.ref_columns[0]}")
        else:
            multi.append(f"({', '.join(fk.columns)}) -> {ref}({', '.join(fk.ref_columns)})")
    cols = []
    for c in t.columns:
        part = f"{c.name} {short_type(c.type)}"
        if c.primary_key:
            part += " PK"
        if c.name in single_fk:
            part += f" -> {single_fk[c.name]}"
        cols.append(part)
    body = ", ".join(cols + [f"FK {m}" for m in multi])
    line = f"- {snap.qualified(t)}({body})"
    if t.kind == "view":
        line += " [view]"
    if t.comment:
        comment = " ".join(t.comment.split())
        line += f" -- {comment[:100]}"
    return line


def render_header(snap: SchemaSnapshot) -> str:
    """`### postgres schema: 12 tables (default schema public)`."""
    n = len(snap.tables)
    header = f"### {snap.dialect} schema: {n} table{'s' if n != 1 else ''}"
    if snap.default_schema:  # only dialects with schemas report one
        header += f" (default schema {snap.default_schema})"
    return header


def render(snap: SchemaSnapshot) -> str:
    """The whole snapshot as compact markdown: a header, then one line per table."""
    return "\n".join([render_header(snap), *(render_table(snap, t) for t in snap.tables)])


def table_names(snap: SchemaSnapshot) -> Iterable[str]:
    return (snap.qualified(t) for t in snap.tables)


def describe(engine: Engine, spec: ConnectionSpec, *, refresh: bool = False) -> dict[str, Any]:
    """The snapshot as plain data, each table with its row count (exact or estimated)."""
    snap = snapshot(engine, spec, refresh=refresh)
    counts, exact = spec.dialect.row_counts(engine, spec, snap.tables)
    tables = []
    for t in snap.tables:
        key = f"{t.schema}.{t.name}" if t.schema else t.name
        tables.append({**asdict(t), "qualified": snap.qualified(t), "rows": counts.get(key)})
    return {"dialect": snap.dialect, "default_schema": snap.default_schema,
            "rows_exact": exact, "tables": tables}
