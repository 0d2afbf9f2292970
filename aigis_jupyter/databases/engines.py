"""Connections to the user's databases: specs, a dialect registry and an engine cache.

A `ConnectionSpec` is the in-memory form of a stored connection row (with the password in
clear text, so it never leaves memory: it is kept out of `repr` and scrubbed from every
driver message). A `Dialect` says how to reach one kind of server; adding an engine is one
`register_dialect(...)` call. Engines are cached per connection id *and* version, so an
edited connection gets a fresh pool and the old one is disposed.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ..errors import BadInput, DatabaseError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Engine

__all__ = [
    "DIALECTS",
    "ConnectionSpec",
    "Dialect",
    "EngineCache",
    "explain_connect_error",
    "get_dialect",
    "register_dialect",
    "scrub",
    "sqlite_path",
    "test_connection",
]

DEFAULT_CONNECT_TIMEOUT_S = 10


@dataclass(frozen=True)
class ConnectionSpec:
    """Everything needed to open one user connection; the password never shows in repr."""

    id: str
    db_type: str
    host: str | None = None
    port: int | None = None
    database: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False, compare=False)
    options: Mapping[str, str] = field(default_factory=dict, hash=False, compare=False)
    allow_write: bool = False
    version: str = ""

    def __repr__(self) -> str:
        where = self.host if self.db_type == "sqlite" else f"{self.host}:{self.port or ''}"
        return (
            f"ConnectionSpec(id={self.id!r}, db_type={self.db_type!r}, at={where!r}, "
            f"database={self.database!r}, username={self.username!r}, "
            f"has_password={bool(self.password)}, allow_write={self.allow_write}, "
            f"version={self.version!r})"
        )

    __str__ = __repr__

    @property
    def dialect(self) -> Dialect:
        return get_dialect(self.db_type)

    @classmethod
    def from_url(cls, url: str, *, id: str = "url", **overrides: Any) -> ConnectionSpec:
        """Build a spec from a SQLAlchemy-style URL (handy for tests and the CLI)."""
        from sqlalchemy.engine import make_url

        u = make_url(url)
        backend = u.get_backend_name()
        db_type = _BACKEND_TO_TYPE.get(backend, backend)
        if db_type == "sqlite":
            fields: dict[str, Any] = {"host": u.database}
        else:
            fields = {
                "host": u.host,
                "port": u.port,
                "database": u.database or None,
                "username": u.username,
                "password": u.password,
                "options": dict(u.query) if u.query else {},
            }
        fields.update(overrides)
        return cls(id=id, db_type=db_type, **fields)


_BACKEND_TO_TYPE = {
    "postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql", "sqlite": "sqlite",
}


# --------------------------------------------------------------------------- dialects


@dataclass(frozen=True)
class Dialect:
    """How to reach one kind of server.

    `family` picks the execution and catalog strategy (postgres, mysql or sqlite); a
    wire-compatible server (CockroachDB, TiDB, ...) is a new entry reusing a family.
    `options` lists the connection options passed through to the driver; `schema` and
    `role` are ours (which schemas to describe; a role to `SET LOCAL ROLE` to).
    """

    name: str
    label: str
    drivername: str
    sqlglot_dialect: str
    family: str
    default_port: int | None = None
    default_database: str | None = None
    file_based: bool = False
    aliases: tuple[str, ...] = ()
    options: tuple[str, ...] = ()

    def url(self, spec: ConnectionSpec) -> URL:
        from sqlalchemy.engine import URL

        query = {k: str(v) for k, v in spec.options.items() if k in self.options}
        return URL.create(
            self.drivername,
            username=spec.username or None,
            password=spec.password or None,
            host=spec.host or "127.0.0.1",
            port=spec.port or self.default_port,
            database=spec.database or self.default_database,
            query=query,
        )

    def check_options(self, spec: ConnectionSpec) -> None:
        known = {*self.options, "schema", "role", "connect_timeout"}
        unknown = sorted(set(spec.options) - known)
        if unknown:
            raise BadInput(
                f"Unknown option(s) for a {self.label} connection: {', '.join(unknown)}. "
                f"Known options: {', '.join(sorted(known))}."
            )
        raw = spec.options.get("connect_timeout")
        if raw is not None and not (str(raw).isdigit() and int(raw) > 0):
            raise BadInput("The connect_timeout option must be a whole number of seconds.")

    def engine_kwargs(self, spec: ConnectionSpec) -> dict[str, Any]:
        timeout = int(spec.options.get("connect_timeout", DEFAULT_CONNECT_TIMEOUT_S))
        args: dict[str, Any] = {"connect_timeout": timeout}
        if self.family == "postgres":
            args["application_name"] = "aigis-jupyter"
        elif self.family == "mysql":
            args["charset"] = spec.options.get("charset", "utf8mb4")
            # PyMySQL never asks for multi-statements unless told through client_flag,
            # which is not a passable option; LOAD DATA LOCAL stays off too.
            args["local_infile"] = False
        return {"connect_args": args, "pool_pre_ping": True, "pool_recycle": 1800}

    def create_engine(self, spec: ConnectionSpec) -> Engine:
        import sqlalchemy as sa

        self.check_options(spec)
        return sa.create_engine(self.url(spec), **self.engine_kwargs(spec))


def sqlite_path(spec: ConnectionSpec) -> Path:
    """The SQLite file of a spec (`host` holds the path, as in the original product)."""
    raw = spec.host or spec.database
    if not raw:
        raise BadInput("A SQLite connection needs the database file path in `host`.")
    return Path(os.path.expanduser(raw)).resolve()


def _sqlite_uri(path: Path, mode: str) -> str:
    # Quote everything that has a meaning in a URI (?, #, %) so any file name works.
    return f"file:{quote(str(path), safe='/')}?mode={mode}"


# Authorizer: default-deny. Reads, functions (minus a deny list), recursion, transaction
# control and a few introspection pragmas are allowed; everything else (writes, DDL,
# ATTACH - which VACUUM INTO uses too - temp objects, pragma writes) is refused.
_SQLITE_DENIED_FUNCS = frozenset(
    {"load_extension", "readfile", "writefile", "edit", "fts3_tokenizer", "sqlite_dbpage"}
)
_SQLITE_READ_PRAGMAS = frozenset(
    {"table_info", "table_xinfo", "table_list", "foreign_key_list", "index_list",
     "index_info", "index_xinfo", "database_list", "collation_list", "function_list"}
)
_SQLITE_SCHEMA_TABLES = frozenset(
    {"sqlite_master", "sqlite_temp_master", "sqlite_schema", "sqlite_temp_schema"}
)
_SQLITE_SCALAR_PRAGMAS = frozenset(
    {"schema_version", "user_version", "data_version", "page_count", "page_size", "encoding",
     "freelist_count", "application_id", "foreign_keys", "query_only", "read_uncommitted"}
)


def _sqlite_authorizer(action: int, a1: str | None, a2: str | None, db: str | None,
                       trigger: str | None) -> int:
    if action in (sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_RECURSIVE,
                  sqlite3.SQLITE_TRANSACTION, sqlite3.SQLITE_SAVEPOINT):
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_FUNCTION:
        denied = (a2 or "").lower() in _SQLITE_DENIED_FUNCS
        return sqlite3.SQLITE_DENY if denied else sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_UPDATE and (a1 or "").lower() in _SQLITE_SCHEMA_TABLES:
        # SQLite asks this while preparing pragma table-valued functions; the schema table
        # itself can never be written here (mode=ro, query_only, writable_schema denied).
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_PRAGMA:
        name = (a1 or "").lower()
        if name in _SQLITE_READ_PRAGMAS or (name in _SQLITE_SCALAR_PRAGMAS and a2 is None):
            return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


def open_sqlite(path: Path, *, read_only: bool) -> sqlite3.Connection:
    """Open an existing SQLite file; never creates one (URI mode ro / rw, not rwc)."""
    if not path.is_file():
        raise DatabaseError(
            f"SQLite file not found: {path}. Check the path; aigis never creates a database "
            "file when connecting.",
            reason="not_found",
        )
    con = sqlite3.connect(
        _sqlite_uri(path, "ro" if read_only else "rw"),
        uri=True,
        check_same_thread=False,  # CancelToken.cancel() calls interrupt() from another thread
        timeout=5,
    )
    if read_only:
        con.execute("PRAGMA query_only = ON")
        con.set_authorizer(_sqlite_authorizer)
    return con


@dataclass(frozen=True)
class SQLiteDialect(Dialect):
    """SQLite: `host` is the file path; opened through a URI so it is never created."""

    def url(self, spec: ConnectionSpec) -> URL:
        from sqlalchemy.engine import URL

        return URL.create(self.drivername, database=str(sqlite_path(spec)))

    def engine_kwargs(self, spec: ConnectionSpec) -> dict[str, Any]:
        from sqlalchemy.pool import QueuePool

        path = sqlite_path(spec)
        read_only = not spec.allow_write

        def creator() -> sqlite3.Connection:
            return open_sqlite(path, read_only=read_only)

        # The creator opens the file through a URI (mode=ro / rw), never creating it.
        return {"creator": creator, "poolclass": QueuePool, "pool_size": 4, "max_overflow": 8}


DIALECTS: dict[str, Dialect] = {}
_ALIASES: dict[str, str] = {}


def register_dialect(d: Dialect) -> None:
    """Add (or replace) a database kind; its aliases resolve to it too."""
    DIALECTS[d.name] = d
    for a in (d.name, *d.aliases):
        _ALIASES[a.lower()] = d.name


def get_dialect(db_type: str) -> Dialect:
    name = _ALIASES.get((db_type or "").lower())
    if name is None:
        raise BadInput(
            f"Unknown database type {db_type!r}. Known types: {', '.join(sorted(DIALECTS))}."
        )
    return DIALECTS[name]


register_dialect(Dialect(
    name="postgres", label="PostgreSQL", drivername="postgresql+psycopg",
    sqlglot_dialect="postgres", family="postgres", default_port=5432,
    default_database="postgres", aliases=("postgresql", "pg"),
    options=("sslmode", "sslrootcert", "sslcert", "sslkey", "target_session_attrs"),
))
register_dialect(Dialect(
    name="mysql", label="MySQL/MariaDB", drivername="mysql+pymysql",
    sqlglot_dialect="mysql", family="mysql", default_port=3306, aliases=("mariadb",),
    options=("charset", "ssl_ca", "ssl_cert", "ssl_key", "ssl_verify_cert"),
))
register_dialect(SQLiteDialect(
    name="sqlite", label="SQLite", drivername="sqlite+pysqlite", sqlglot_dialect="sqlite",
    family="sqlite", file_based=True, aliases=("sqlite3",),
))


# --------------------------------------------------------------------------- engine cache


class EngineCache:
    """One SQLAlchemy engine per connection id, replaced when the row's version changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._engines: dict[str, tuple[str, Engine]] = {}

    def get(self, spec: ConnectionSpec) -> Engine:
        with self._lock:
            hit = self._engines.get(spec.id)
            if hit is not None and hit[0] == spec.version:
                return hit[1]
            engine = spec.dialect.create_engine(spec)
            self._engines[spec.id] = (spec.version, engine)
        if hit is not None:
            hit[1].dispose()
        return engine

    def dispose(self, conn_id: str) -> None:
        with self._lock:
            hit = self._engines.pop(conn_id, None)
        if hit is not None:
            hit[1].dispose()

    def dispose_all(self) -> None:
        with self._lock:
            engines = [e for _, e in self._engines.values()]
            self._engines.clear()
        for e in engines:
            e.dispose()

    def __contains__(self, conn_id: object) -> bool:
        return conn_id in self._engines

    def __len__(self) -> int:
        return len(self._engines)


# --------------------------------------------------------------------------- errors


def scrub(text: str, spec: ConnectionSpec | None) -> str:
    """Remove the password (and URL userinfo) from a driver message."""
    pw = spec.password if spec else None
    if pw:
        if len(pw) >= 3:
            text = text.replace(pw, "***")
        else:  # a tiny password would mangle words: only scrub where one could appear
            text = text.replace(f":{pw}@", ":***@").replace(f"password={pw}", "password=***")
    return re.sub(r"(://[^:/@\s]*:)[^@\s]*@", r"\1***@", text)


def _driver_message(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    if type(orig).__module__.startswith("pymysql") and len(orig.args) >= 2:
        return str(orig.args[1])
    msg = str(orig).strip()
    return msg.splitlines()[0] if msg else type(orig).__name__


def _mysql_code(exc: BaseException) -> int | None:
    orig = getattr(exc, "orig", None) or exc
    if type(orig).__module__.startswith("pymysql") and orig.args and isinstance(orig.args[0], int):
        return orig.args[0]
    return None


def _where(spec: ConnectionSpec) -> str:
    d = spec.dialect
    return f"{spec.host or '127.0.0.1'}:{spec.port or d.default_port}"


def explain_connect_error(exc: BaseException, spec: ConnectionSpec) -> DatabaseError:
    """Turn a driver's connection failure into one clear, password-free sentence."""
    if isinstance(exc, DatabaseError):
        return exc
    msg = scrub(_driver_message(exc), spec)
    low = msg.lower()
    code = _mysql_code(exc)
    where = _where(spec)
    user = spec.username or ""
    db = spec.database or spec.dialect.default_database or ""
    if spec.dialect.file_based:
        return DatabaseError(f"Could not open the SQLite file {spec.host}: {msg}.")
    if code == 1045 or "password authentication failed" in low or "access denied for user" in low:
        return DatabaseError(
            f"Authentication failed for user {user!r} at {where}: check the username and "
            "password.", reason="auth_failed")
    if (code == 1049 or "unknown database" in low
            or re.search(r"database \".*\" does not exist", low)):
        return DatabaseError(
            f"Database {db!r} does not exist on {where}: check the database name.",
            reason="unknown_database")
    if re.search(r"role \".*\" does not exist", low):
        return DatabaseError(
            f"User {user!r} does not exist on {where}: check the username.",
            reason="auth_failed")
    if code == 1044 or "permission denied for database" in low:
        return DatabaseError(
            f"User {user!r} may not use database {db!r} on {where}: ask for access or pick "
            "another database.", reason="auth_failed")
    unreachable = (
        "connection refused", "could not connect", "can't connect", "timeout expired",
        "timed out", "name or service not known", "could not translate host",
        "failed to resolve", "nodename nor servname", "no route to host",
        "network is unreachable", "temporary failure in name resolution",
        "getaddrinfo", "connection to server at",
    )
    if code in (2003, 2005, 2006, 2013) or any(s in low for s in unreachable):
        return DatabaseError(
            f"Could not reach {where} — check host/port, is the server running? ({msg})",
            reason="unreachable")
    return DatabaseError(f"Could not connect to {where}: {msg}")


def test_connection(spec: ConnectionSpec, cache: EngineCache | None = None) -> dict[str, Any]:
    """Open a connection and ask the server its version; a failure says what to fix."""
    cache = EngineCache() if cache is None else cache
    try:
        engine = cache.get(spec)
    except (BadInput, DatabaseError):
        raise
    except Exception as exc:  # a bad option value, a driver that cannot load, ...
        raise DatabaseError(f"Cannot set up the connection: {scrub(str(exc), spec)}") from None
    family = spec.dialect.family
    start = time.perf_counter()
    try:
        raw = engine.raw_connection()
    except Exception as exc:
        cache.dispose(spec.id)
        raise explain_connect_error(_unwrap(exc), spec) from None
    try:
        cur = raw.cursor()
        if family == "sqlite":
            cur.execute("SELECT sqlite_version()")
            version = "SQLite " + str(cur.fetchone()[0])
        elif family == "mysql":
            cur.execute("SELECT VERSION()")
            v = str(cur.fetchone()[0])
            version = ("MariaDB " if "mariadb" in v.lower() else "MySQL ") + v
        else:
            cur.execute("SELECT version()")
            version = str(cur.fetchone()[0])
        cur.close()
        raw.rollback()
    except Exception as exc:
        raw.invalidate()
        cache.dispose(spec.id)
        raise DatabaseError(f"Connected, but the server failed a test query: "
                            f"{scrub(_driver_message(exc), spec)}") from None
    finally:
        raw.close()
    return {
        "ok": True,
        "db_type": spec.dialect.name,
        "server_version": version,
        "latency_ms": round((time.perf_counter() - start) * 1000, 2),
    }


test_connection.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def _unwrap(exc: BaseException) -> BaseException:
    """SQLAlchemy wraps driver errors; DatabaseErrors raised by our creator come back as-is."""
    orig = getattr(exc, "orig", None)
    if isinstance(orig, DatabaseError):
        return orig
    return exc
