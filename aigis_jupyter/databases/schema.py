"""Schema snapshots: one catalog query per database, a cheap fingerprint, compact rendering.

Why one query: reflecting table by table costs a round trip per table, which is slow on
a remote server with thousands of tables. Each dialect instead asks its catalog once
(pg_catalog; information_schema on MySQL; sqlite_master joined with the pragma
table-valued functions on SQLite) for tables, columns, types, nullability, primary and
foreign keys. On PostgreSQL the query returns one row per table (its columns as arrays)
plus one per foreign key (column numbers, named from those arrays here), unsorted: the
server neither sorts tens of thousands of wide rows nor looks up column names per key.

Fingerprints decide whether a cached snapshot is still right, so they must be much
cheaper than the snapshot:

* PostgreSQL: count and newest `xmin` of the catalog rows describing user relations,
  columns, constraints and comments. Any DDL writes those rows in a new transaction,
  so the newest xmin (or the count, after a drop) moves; VACUUM/ANALYZE update pg_class
  in place and keep xmin, so statistics do not invalidate the cache. The newest xmin is
  read as `now - min(age(xmin))` with `now` from `age('3'::xid)` in the same statement
  (`age` is an integer per row; `xmin::text::bigint` formats and parses a string).
* SQLite: `PRAGMA schema_version`, which SQLite bumps on every schema change.
* MySQL/MariaDB: there is no change counter, so the server sums CRC32s of the column,
  key and table rows; only a few bytes cross the network.

Snapshots are cached by (connection id, fingerprint).
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from ..errors import DatabaseError
from .engines import ConnectionSpec, get_dialect, scrub

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = [
    "Column",
    "ForeignKey",
    "SchemaSnapshot",
    "Table",
    "clear_cache",
    "estimate_tokens",
    "fingerprint",
    "render",
    "snapshot",
]


@dataclass
class Column:
    name: str
    type: str
    nullable: bool = True
    primary_key: bool = False
    comment: str | None = None


@dataclass
class ForeignKey:
    columns: list[str]
    ref_table: str
    ref_columns: list[str]
    ref_schema: str | None = None
    name: str | None = None


@dataclass
class Table:
    name: str
    schema: str | None
    columns: list[Column]
    foreign_keys: list[ForeignKey] = field(default_factory=list)
    kind: str = "table"  # table | view
    comment: str | None = None

    @property
    def primary_key(self) -> list[str]:
        return [c.name for c in self.columns if c.primary_key]


@dataclass
class SchemaSnapshot:
    dialect: str
    tables: list[Table]
    fingerprint: str
    default_schema: str | None = None
    taken_at: float = field(default_factory=time.time)

    def table(self, name: str, schema: str | None = None) -> Table | None:
        """Find a table by name (case-insensitive), optionally in a given schema."""
        low = name.lower()
        for t in self.tables:
            if t.name.lower() == low and (schema is None or (t.schema or "") == schema):
                return t
        return None

    def qualified(self, t: Table) -> str:
        if t.schema and t.schema != self.default_schema:
            return f"{t.schema}.{t.name}"
        return t.name

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- catalog queries

_PG_REL_FROM = """
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
      AND NOT c.relispartition
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\\_toast%%' AND n.nspname NOT LIKE 'pg\\_temp\\_%%'
      AND (%(schemas)s::text[] IS NULL OR n.nspname = ANY(%(schemas)s::text[]))
"""
_PG_RELS = f"SELECT c.oid, n.nspname, c.relname, c.relkind {_PG_REL_FROM}"

# One row per relation ('c': its columns as arrays, in no particular order but the same
# order in every array) and one per foreign key ('f': column numbers, named from the
# arrays; the SQL names them only when the referenced table is outside the snapshot).
# Column comments come as 'd' rows: few databases have many.
_PG_CATALOG = f"""
WITH rels AS MATERIALIZED ({_PG_RELS}),
cols AS (
  SELECT a.attrelid,
         array_agg(a.attnum::int) AS nums,
         array_agg(a.attname::text) AS names,
         array_agg(pg_catalog.format_type(a.atttypid, a.atttypmod)) AS types,
         array_agg(NOT a.attnotnull) AS nullable
  FROM pg_catalog.pg_attribute a
  JOIN rels r ON r.oid = a.attrelid
  WHERE a.attnum > 0 AND NOT a.attisdropped
  GROUP BY a.attrelid
)
SELECT 'c' AS kind, r.oid::bigint, r.nspname::text, r.relname::text, r.relkind::text,
       td.description, c.nums, c.names, c.types, c.nullable, pk.conkey::int[],
       NULL::text, NULL::int[], NULL::text, NULL::text, NULL::bigint, NULL::text[]
FROM rels r
JOIN cols c ON c.attrelid = r.oid
LEFT JOIN pg_catalog.pg_constraint pk ON pk.conrelid = r.oid AND pk.contype = 'p'
LEFT JOIN pg_catalog.pg_description td
       ON td.objoid = r.oid AND td.classoid = 'pg_catalog.pg_class'::regclass
      AND td.objsubid = 0
UNION ALL
SELECT 'f', con.conrelid::bigint, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       con.conkey::int[], con.conname::text, con.confkey::int[], fn.nspname::text,
       fc.relname::text, con.confrelid::bigint,
       CASE WHEN x.oid IS NULL THEN
         ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY AS k(num, i)
               JOIN pg_catalog.pg_attribute a
                 ON a.attrelid = con.confrelid AND a.attnum = k.num ORDER BY k.i)
       END
FROM pg_catalog.pg_constraint con
JOIN rels r ON r.oid = con.conrelid
JOIN pg_catalog.pg_class fc ON fc.oid = con.confrelid
JOIN pg_catalog.pg_namespace fn ON fn.oid = fc.relnamespace
LEFT JOIN rels x ON x.oid = con.confrelid
WHERE con.contype = 'f'
UNION ALL
SELECT 'd', d.objoid::bigint, NULL, NULL, NULL, d.description, ARRAY[d.objsubid], NULL,
       NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
FROM pg_catalog.pg_description d
JOIN rels r ON r.oid = d.objoid
WHERE d.classoid = 'pg_catalog.pg_class'::regclass AND d.objsubid > 0
"""

_PG_FINGERPRINT = f"""
WITH rels AS MATERIALIZED (SELECT c.oid, age(c.xmin) AS age {_PG_REL_FROM})
SELECT current_database(), current_schema(), age('3'::xid),
  (SELECT count(*) || '/' || coalesce(min(r.age), -1) FROM rels r),
  (SELECT count(*) || '/' || coalesce(min(age(a.xmin)), -1)
     FROM pg_catalog.pg_attribute a JOIN rels r ON r.oid = a.attrelid WHERE a.attnum > 0),
  (SELECT count(*) || '/' || coalesce(min(age(con.xmin)), -1)
     FROM pg_catalog.pg_constraint con JOIN rels r ON r.oid = con.conrelid),
  (SELECT count(*) || '/' || coalesce(min(age(d.xmin)), -1)
     FROM pg_catalog.pg_description d JOIN rels r ON r.oid = d.objoid
    WHERE d.classoid = 'pg_catalog.pg_class'::regclass)
"""

_MYSQL_CATALOG = """
SELECT 'c' AS kind, c.TABLE_NAME AS tname, t.TABLE_TYPE AS ttype, c.ORDINAL_POSITION AS pos,
       c.COLUMN_NAME AS cname, c.COLUMN_TYPE AS ctype, c.IS_NULLABLE AS nullable,
       c.COLUMN_COMMENT AS ccomment, t.TABLE_COMMENT AS tcomment,
       NULL AS kname, NULL AS rschema, NULL AS rtable, NULL AS rcol
FROM information_schema.COLUMNS c
JOIN information_schema.TABLES t
  ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME
WHERE c.TABLE_SCHEMA = DATABASE()
UNION ALL
SELECT CASE WHEN k.CONSTRAINT_NAME = 'PRIMARY' THEN 'p' ELSE 'f' END, k.TABLE_NAME, NULL,
       k.ORDINAL_POSITION, k.COLUMN_NAME, NULL, NULL, NULL, NULL,
       k.CONSTRAINT_NAME, k.REFERENCED_TABLE_SCHEMA, k.REFERENCED_TABLE_NAME,
       k.REFERENCED_COLUMN_NAME
FROM information_schema.KEY_COLUMN_USAGE k
WHERE k.TABLE_SCHEMA = DATABASE()
  AND (k.CONSTRAINT_NAME = 'PRIMARY' OR k.REFERENCED_TABLE_NAME IS NOT NULL)
ORDER BY 2, 1, 10, 4
"""

_MYSQL_FINGERPRINT = """
SELECT DATABASE(),
  (SELECT CONCAT(COUNT(*), '/', COALESCE(SUM(CRC32(CONCAT_WS('|', TABLE_NAME, COLUMN_NAME,
          ORDINAL_POSITION, COLUMN_TYPE, IS_NULLABLE, COLUMN_COMMENT))), 0))
     FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()),
  (SELECT CONCAT(COUNT(*), '/', COALESCE(SUM(CRC32(CONCAT_WS('|', TABLE_NAME, COLUMN_NAME,
          CONSTRAINT_NAME, ORDINAL_POSITION, REFERENCED_TABLE_NAME,
          REFERENCED_COLUMN_NAME))), 0))
     FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = DATABASE()),
  (SELECT CONCAT(COUNT(*), '/', COALESCE(SUM(CRC32(CONCAT_WS('|', TABLE_NAME, TABLE_TYPE,
          TABLE_COMMENT))), 0))
     FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE())
"""

_SQLITE_CATALOG = """
SELECT 'c', m.name, m.type, p.cid, p.name, p.type, p."notnull", p.pk,
       NULL, NULL, NULL
FROM sqlite_master AS m JOIN pragma_table_info(m.name) AS p
WHERE m.type IN ('table', 'view') AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
UNION ALL
SELECT 'f', m.name, m.type, f.seq, f."from", NULL, NULL, NULL,
       f.id, f."table", f."to"
FROM sqlite_master AS m JOIN pragma_foreign_key_list(m.name) AS f
WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
ORDER BY 2, 1, 9, 4
"""

_SQLITE_FINGERPRINT = "SELECT schema_version FROM pragma_schema_version"


def _schemas(spec: ConnectionSpec) -> list[str] | None:
    raw = spec.options.get("schema")
    if not raw:
        return None
    return [s.strip() for s in str(raw).split(",") if s.strip()] or None


def _query(engine: Engine, spec: ConnectionSpec, sql: str,
           params: dict[str, Any] | None = None, *,
           binary: bool = False) -> list[tuple[Any, ...]]:
    """Run one catalog query on a pooled connection, read-only, and roll back.

    `binary` (PostgreSQL) asks for binary results: arrays decode much faster."""
    from .execute import _checkout

    raw = _checkout(engine, spec)
    try:
        raw.rollback()  # start clean (a pool ping may have opened a transaction)
        cur = raw.cursor()
        postgres = get_dialect(spec.db_type).family == "postgres"
        if postgres:
            cur.execute("SET TRANSACTION READ ONLY")
        if binary and postgres:
            cur.execute(sql, params, binary=True)
        elif params is None:
            cur.execute(sql)
        else:
            cur.execute(sql, params)
        rows = list(cur.fetchall())
        cur.close()
        raw.rollback()
        return rows
    except DatabaseError:
        raise
    except Exception as exc:
        raw.invalidate()
        msg = scrub(str(getattr(exc, "args", [exc])[-1] if getattr(exc, "args", None)
                        else exc), spec)
        raise DatabaseError(f"Could not read the database catalog: {msg}") from None
    finally:
        raw.close()


def fingerprint(engine: Engine, spec: ConnectionSpec) -> tuple[str, str | None]:
    """(fingerprint, default schema) from one cheap query; see the module doc."""
    family = get_dialect(spec.db_type).family
    if family == "postgres":
        row = _query(engine, spec, _PG_FINGERPRINT, {"schemas": _schemas(spec)})[0]
        now = (int(row[2]) + 3) % 2**32
        parts = [str(row[0]), str(row[1]), *(_pg_newest(str(v), now) for v in row[3:])]
        default_schema = row[1]
    elif family == "mysql":
        row = _query(engine, spec, _MYSQL_FINGERPRINT)[0]
        parts, default_schema = [str(v) for v in row], None
    elif family == "sqlite":
        row = _query(engine, spec, _SQLITE_FINGERPRINT)[0]
        parts, default_schema = [str(engine.url.database), str(row[0])], None
    else:
        raise DatabaseError(f"No catalog reader for database family {family!r}.")
    digest = hashlib.sha256("|".join([family, *parts]).encode()).hexdigest()[:20]
    return digest, default_schema


_FROZEN_AGE = 2**31 - 1  # age() of a frozen or bootstrap xmin


def _pg_newest(part: str, now: int) -> str:
    """`count/min_age` -> `count/newest_xmin`: the same value in every transaction."""
    count, _, age = part.partition("/")
    if age in ("-1", str(_FROZEN_AGE)):
        return part
    return f"{count}/{(now - int(age)) % 2**32}"


def _load_pg(rows: list[tuple[Any, ...]]) -> list[Table]:
    """Tables from the rows of `_PG_CATALOG` (see the comment there)."""
    by_oid: dict[int, tuple[Table, dict[int, str]]] = {}
    fks: list[tuple[Any, ...]] = []
    comments: list[tuple[Any, ...]] = []
    for row in rows:
        kind = row[0]
        if kind == "c":
            (_, oid, nsp, rel, relkind, tcomment, nums, names, types, nullable, pkey) = row[:11]
            pk = set(pkey or ())
            cols = [Column(name, typ, bool(null), num in pk)
                    for num, name, typ, null in sorted(zip(nums, names, types, nullable,
                                                           strict=True))]
            t = Table(name=rel, schema=nsp, columns=cols,
                      kind="view" if relkind in ("v", "m") else "table",
                      comment=tcomment or None)
            by_oid[oid] = (t, dict(zip(nums, names, strict=True)))
        elif kind == "f":
            fks.append(row)
        else:
            comments.append(row)
    fks.sort(key=lambda r: (r[1], r[11]))
    for row in fks:
        oid, conkey, conname, confkey, ref_schema, ref_table, ref_oid, ref_names = (
            row[1], *row[10:])
        own = by_oid.get(oid)
        if own is None:
            continue
        if ref_names is None:
            ref = by_oid.get(ref_oid)
            ref_names = [ref[1].get(k, "") for k in confkey] if ref else []
        own[0].foreign_keys.append(ForeignKey([own[1].get(k, "") for k in conkey], ref_table,
                                              list(ref_names), ref_schema, conname))
    for row in comments:
        own = by_oid.get(row[1])
        if own is not None and row[5]:
            name = own[1].get(row[6][0])
            for c in own[0].columns:
                if c.name == name:
                    c.comment = row[5]
    return [t for t, _ in by_oid.values()]


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
    with _gc_paused():
        return _load_tables(engine, spec, fp, default_schema)


def _load_tables(engine: Engine, spec: ConnectionSpec, fp: str,
                 default_schema: str | None) -> SchemaSnapshot:
    family = get_dialect(spec.db_type).family
    tables: dict[tuple[str | None, str], Table] = {}

    def table(schema: str | None, name: str, kind: str = "table") -> Table:
        t = tables.get((schema, name))
        if t is None:
            t = tables[(schema, name)] = Table(name=name, schema=schema, columns=[], kind=kind)
        return t

    if family == "postgres":
        rows = _query(engine, spec, _PG_CATALOG, {"schemas": _schemas(spec)}, binary=True)
        for t in _load_pg(rows):
            tables[(t.schema, t.name)] = t
    elif family == "mysql":
        rows = _query(engine, spec, _MYSQL_CATALOG)
        pks: dict[str, set[str]] = {}
        fks: dict[tuple[str, str], ForeignKey] = {}
        for (kind, tname, ttype, _pos, cname, ctype, nullable, ccomment, tcomment, kname,
             rschema, rtable, rcol) in rows:
            kind, tname = _s(kind), _s(tname)
            if kind == "c":
                is_view = _s(ttype) == "VIEW"
                t = table(None, tname, "view" if is_view else "table")
                t.columns.append(Column(_s(cname), _s(ctype), _s(nullable) == "YES", False,
                                        _s(ccomment) or None))
                if tcomment and not is_view:
                    t.comment = _s(tcomment)
            elif kind == "p":
                pks.setdefault(tname, set()).add(_s(cname))
            else:
                fk = fks.get((tname, _s(kname)))
                if fk is None:
                    fk = fks[(tname, _s(kname))] = ForeignKey([], _s(rtable), [], _s(rschema),
                                                              _s(kname))
                    table(None, tname).foreign_keys.append(fk)
                fk.columns.append(_s(cname))
                fk.ref_columns.append(_s(rcol))
        current = engine.url.database
        for (_schema, tname), t in tables.items():
            for c in t.columns:
                c.primary_key = c.name in pks.get(tname, ())
            for fk in t.foreign_keys:
                if fk.ref_schema == current:
                    fk.ref_schema = None  # same database: render unqualified
    elif family == "sqlite":
        try:
            rows = _query(engine, spec, _SQLITE_CATALOG)
        except DatabaseError:
            # A view over a dropped table makes pragma_table_info fail: describe tables only.
            rows = _query(engine, spec, _SQLITE_CATALOG.replace("IN ('table', 'view')",
                                                                "IN ('table')"))
        fks_sq: dict[tuple[str, int], ForeignKey] = {}
        for (kind, tname, ttype, _pos, col, typ, notnull, pk, fk_id, rtable, rcol) in rows:
            t = table(None, tname, "view" if ttype == "view" else "table")
            if kind == "c":
                t.columns.append(Column(col, typ or "", not notnull, bool(pk)))
            else:
                fk = fks_sq.get((tname, fk_id))
                if fk is None:
                    fk = fks_sq[(tname, fk_id)] = ForeignKey([], rtable, [])
                    t.foreign_keys.append(fk)
                fk.columns.append(col)
                fk.ref_columns.append(rcol)
        # `REFERENCES t` without columns means t's primary key.
        for t in tables.values():
            for fk in t.foreign_keys:
                if any(c is None for c in fk.ref_columns):
                    ref = next((x for x in tables.values()
                                if x.name.lower() == fk.ref_table.lower()), None)
                    fk.ref_columns = ref.primary_key if ref else [c or "" for c in
                                                                  fk.ref_columns]
    else:
        raise DatabaseError(f"No catalog reader for database family {family!r}.")
    ordered = sorted(tables.values(), key=lambda t: ((t.schema or "").lower(), t.name.lower()))
    return SchemaSnapshot(dialect=get_dialect(spec.db_type).name, tables=ordered,
                          fingerprint=fp, default_schema=default_schema)


def _s(v: Any) -> Any:
    """MariaDB may hand information_schema text back as bytes."""
    return v.decode() if isinstance(v, bytes | bytearray) else v


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
    out = (t or "").strip().lower()
    for pat, rep in _TYPE_SUBS:
        out = pat.sub(rep, out)
    return out or "?"


def estimate_tokens(text: str) -> int:
    """Rough token count (about four characters per token for schema text)."""
    return (len(text) + 3) // 4


def _table_line(snap: SchemaSnapshot, t: Table) -> str:
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


_WORD = re.compile(r"[A-Z]+(?![^\W\dA-Z_])|[A-Z]?[^\W\dA-Z_]+|\d+")
_STOP = frozenset(re.split(
    r"\s+",
    "a an the of by per for in on at to from with and or is are was were be been what which "
    "who whom how many much show list give me my our all each every top most least than "
    "that this these those do does did have has had i we you it its there their between "
    "over under into as vs versus please find get tell total number count average sum "
    "compare",
))
_SYNONYMS = {
    "revenue": ("amount", "price", "total", "sale", "payment", "invoice", "order"),
    "sale": ("order", "invoice", "amount", "revenue"),
    "sold": ("order", "item", "quantity"),
    "client": ("customer",),
    "buyer": ("customer",),
    "spend": ("amount", "payment", "total"),
    "staff": ("employee",),
    "rep": ("employee",),
    "salesperson": ("employee",),
    "country": ("region", "country"),
    "monthly": ("date",),
    "month": ("date",),
    "year": ("date",),
    "yearly": ("date",),
    "song": ("track",),
    "music": ("track", "genre", "album"),
}


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    """A crude stem, applied until it settles, so "meetings" and "meeting" both give
    "meet" (one pass would leave "meeting" for the plural and "meet" for the name)."""
    w = word.lower()
    for _ in range(3):
        s = _stem_once(w)
        if s == w:
            break
        w = s
    return w


def _stem_once(w: str) -> str:
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 4 and w.endswith(("ses", "xes", "ches", "shes")):
        return w[:-2]
    if len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
        return w[:-1]
    if len(w) > 5 and w.endswith("ing"):
        return w[:-3]
    if len(w) > 5 and w.endswith("ly"):
        return w[:-2]
    if len(w) > 4 and w.endswith("ed"):
        return w[:-2]
    return w


def _words(text: str) -> list[str]:
    """Split names and questions into lower-case words: snake_case, camelCase, digits."""
    return [w.lower() for w in _WORD.findall(text or "")]


@lru_cache(maxsize=65536)
def _ident_terms(name: str) -> frozenset[str]:
    """The stemmed words of one table or column name (names repeat across tables)."""
    return frozenset(_stem(w) for w in _words(name))


def _terms(question: str) -> dict[str, float]:
    terms: dict[str, float] = {}
    for w in _words(question):
        if w in _STOP or len(w) < 2:
            continue
        s = _stem(w)
        terms[s] = max(terms.get(s, 0.0), 1.0)
        for syn in _SYNONYMS.get(w, ()) + _SYNONYMS.get(s, ()):
            terms.setdefault(_stem(syn), 0.5)
    return terms


@dataclass
class _Index:
    lines: list[str]
    name_terms: list[frozenset[str]]
    col_terms: list[frozenset[str]]
    neighbours: list[set[int]]


_index_lock = threading.Lock()
_indexes: dict[int, tuple[SchemaSnapshot, _Index]] = {}


def _index(snap: SchemaSnapshot) -> _Index:
    with _index_lock:
        hit = _indexes.get(id(snap))
        if hit is not None and hit[0] is snap:
            return hit[1]
    pos = {}
    for i, t in enumerate(snap.tables):
        pos.setdefault(t.name.lower(), i)
        pos.setdefault(f"{(t.schema or '').lower()}.{t.name.lower()}", i)
    neighbours: list[set[int]] = [set() for _ in snap.tables]
    for i, t in enumerate(snap.tables):
        for fk in t.foreign_keys:
            j = pos.get(f"{(fk.ref_schema or t.schema or '').lower()}.{fk.ref_table.lower()}",
                        pos.get(fk.ref_table.lower()))
            if j is not None and j != i:
                neighbours[i].add(j)
                neighbours[j].add(i)
    idx = _Index(
        lines=[_table_line(snap, t) for t in snap.tables],
        name_terms=[_ident_terms(t.name) for t in snap.tables],
        col_terms=[frozenset().union(*(_ident_terms(c.name) for c in t.columns))
                   for t in snap.tables],
        neighbours=neighbours,
    )
    with _index_lock:
        if len(_indexes) > 32:
            _indexes.clear()
        _indexes[id(snap)] = (snap, idx)
    return idx


def _rank(snap: SchemaSnapshot, idx: _Index, question: str) -> list[int]:
    terms = _terms(question)
    n = len(snap.tables)
    direct = [0.0] * n
    for i in range(n):
        name_t, col_t = idx.name_terms[i], idx.col_terms[i]
        score = 0.0
        for term, weight in terms.items():
            if term in name_t:
                score += 4.0 * weight
            elif term in col_t:
                score += 1.0 * weight
        direct[i] = score
    total = list(direct)
    for i in range(n):
        if direct[i] > 0:
            for j in idx.neighbours[i]:
                total[j] += 0.35 * direct[i]
    degree = [len(nb) for nb in idx.neighbours]
    return sorted(range(n), key=lambda i: (-total[i], -direct[i], -degree[i], i))


def render(snap: SchemaSnapshot, *, question: str | None = None,
           token_budget: int | None = None) -> str:
    """Compact markdown: one line per table (`name(col type PK, col type -> t.col, ...)`).

    With a token budget, the tables most relevant to the question (words matched against
    table and column names, plus their foreign-key neighbours) are kept until the budget
    is spent; a closing line says how many were left out.
    """
    idx = _index(snap)
    n = len(snap.tables)
    header = f"### {snap.dialect} schema: {n} table{'s' if n != 1 else ''}"
    if snap.default_schema and snap.dialect == "postgres":
        header += f" (default schema {snap.default_schema})"
    if token_budget is None:
        return "\n".join([header, *idx.lines])
    order = _rank(snap, idx, question or "")
    budget = token_budget - estimate_tokens(header) - 12  # room for the closing line
    chosen: list[int] = []
    for i in order:
        cost = estimate_tokens(idx.lines[i]) + 1
        if cost <= budget:
            chosen.append(i)
            budget -= cost
        elif budget < 8:
            break
    chosen.sort()
    lines = [header, *(idx.lines[i] for i in chosen)]
    left = n - len(chosen)
    if left:
        lines.append(f"({left} more table{'s' if left != 1 else ''} not shown; ask about them "
                     "by name.)")
    return "\n".join(lines)


def table_names(snap: SchemaSnapshot) -> Iterable[str]:
    return (snap.qualified(t) for t in snap.tables)
