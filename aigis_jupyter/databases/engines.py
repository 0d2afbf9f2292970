"""Connections to the user's databases: specs, the dialect registry and an engine cache.

A `ConnectionSpec` is the in-memory form of a stored connection row (with the password in
clear text, so it never leaves memory: it is kept out of `repr` and scrubbed from every
driver message). A `Dialect` is everything one kind of server needs: how to connect, run a
guarded statement, read the catalog, fingerprint it, map its errors. Each built-in kind is
one module in `dialects/`, loaded by name on first use of the registry (this module never
imports one, so nothing here depends on a driver); adding an engine is one file that calls
`register_dialect(...)`. Engines are cached per connection id *and* version, so an edited
connection gets a fresh pool and the old one is disposed.
"""

from __future__ import annotations

import importlib
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import BadInput, DatabaseError
from ..scrub import scrub

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Engine

    from .catalog import Table
    from .runs import Fetched, Run

__all__ = [
    "BUILTIN_DIALECTS",
    "DIALECTS",  # noqa: F822  (served by the module __getattr__, builtins loaded)
    "ConnectionSpec",
    "Dialect",
    "EngineCache",
    "explain_connect_error",
    "get_dialect",
    "privilege_warning",
    "register_dialect",
    "test_connection",
]

DEFAULT_CONNECT_TIMEOUT_S = 10
#: Modules of `aigis_jupyter.databases.dialects` loaded when the registry is first used.
BUILTIN_DIALECTS = ("postgres", "mysql", "sqlite")


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
        where = self.host if _file_based(self.db_type) else f"{self.host}:{self.port or ''}"
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
        try:
            db_type = get_dialect(backend).name
        except BadInput:
            db_type = backend
        if _file_based(db_type):
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


def _file_based(db_type: str) -> bool:
    try:
        return get_dialect(db_type).file_based
    except BadInput:
        return False


# --------------------------------------------------------------------------- dialects


@dataclass(frozen=True)
class Dialect:
    """How to reach, query and describe one kind of server.

    The fields are data (names, defaults, the options passed through to the driver; `schema`
    and `role` are ours: which schemas to describe, a role to `SET LOCAL ROLE` to). A
    dialect module implements `run`, `map_error`, `fingerprint` and `catalog` (the base
    ones refuse), and `server_version` or the error readers where its driver differs. A
    wire-compatible server (CockroachDB, TiDB, ...) is an existing dialect `replace`d with
    another name and defaults.
    """

    name: str
    label: str
    drivername: str
    sqlglot_dialect: str
    default_port: int | None = None
    default_database: str | None = None
    file_based: bool = False
    aliases: tuple[str, ...] = ()
    options: tuple[str, ...] = ()

    # -- connecting

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
        if raw is not None and not (str(raw).isascii() and str(raw).isdigit() and int(raw) > 0):
            raise BadInput("The connect_timeout option must be a whole number of seconds.")

    def connect_args(self, spec: ConnectionSpec) -> dict[str, Any]:
        """Keyword arguments of the driver's `connect()`."""
        return {"connect_timeout": int(spec.options.get("connect_timeout",
                                                         DEFAULT_CONNECT_TIMEOUT_S))}

    def engine_kwargs(self, spec: ConnectionSpec) -> dict[str, Any]:
        return {"connect_args": self.connect_args(spec), "pool_pre_ping": True,
                "pool_recycle": 1800}

    def create_engine(self, spec: ConnectionSpec) -> Engine:
        import sqlalchemy as sa

        self.check_options(spec)
        return sa.create_engine(self.url(spec), **self.engine_kwargs(spec))

    # -- running (layer 2 of the guard, see execute.py)

    def run(self, engine: Engine, spec: ConnectionSpec, stmt: str, *, max_rows: int,
            run: Run, read_only: bool, as_query: bool) -> Fetched:
        """Run one statement (already through the parser layer when the guard is on):
        read-only transaction unless the connection allows writes, the server's timeout,
        `run`'s cancel and deadline, at most `max_rows + 1` rows read."""
        raise BadInput(f"No executor for database type {self.name!r}.")

    def map_error(self, exc: BaseException, run: Run, engine: Engine,
                  spec: ConnectionSpec) -> Exception:
        """A driver error raised while running, as an AigisError saying what to do next."""
        return DatabaseError("The database reported an error: "
                             f"{scrub(self.driver_message(exc), [spec.password])}",
                             reason="query_error")

    # -- describing

    def fingerprint(self, engine: Engine, spec: ConnectionSpec) -> tuple[list[str], str | None]:
        """(parts that change whenever the schema does, default schema): one cheap query."""
        raise DatabaseError(f"No catalog reader for database type {self.name!r}.")

    def catalog(self, engine: Engine, spec: ConnectionSpec) -> list[Table]:
        """Every table and view with columns and keys, from one catalog query."""
        raise DatabaseError(f"No catalog reader for database type {self.name!r}.")

    def row_counts(self, engine: Engine, spec: ConnectionSpec,
                   tables: list[Table]) -> tuple[dict[str, int | None], bool]:
        """Rows per table (keyed by `schema.name`, or `name` without a schema) and whether
        the counts are exact; large servers give their statistics' estimates."""
        return {}, False

    def risky_privileges(self, cursor: Any, spec: ConnectionSpec) -> list[str]:
        """What the login may do that only the SQL parser stops (`superuser`,
        `server_files`, `server_admin`): asked on an open cursor when a connection is tested.
        A least-privilege account has none."""
        return []

    def readonly_role_sql(self, spec: ConnectionSpec, role: str, password: str) -> list[str]:
        """Statements that create a login able to read this database and nothing else."""
        raise BadInput(f"A {self.label} connection has no accounts to create.")

    def server_version(self, cursor: Any) -> str:
        """What `test_connection` reports, asked on an open DB-API cursor."""
        cursor.execute("SELECT version()")
        return str(cursor.fetchone()[0])

    # -- reading driver errors

    def driver_message(self, exc: BaseException) -> str:
        """The driver's own sentence, without SQLAlchemy's wrapping."""
        orig = getattr(exc, "orig", None) or exc
        msg = str(orig).strip()
        return msg.splitlines()[0] if msg else type(orig).__name__

    def connect_failure(self, exc: BaseException) -> str | None:
        """What a connection failure means, from the driver's error code if it has one:
        `auth`, `unknown_database`, `unknown_user`, `no_access` or `unreachable`."""
        return None


_DIALECTS: dict[str, Dialect] = {}
_ALIASES: dict[str, str] = {}
_builtins_lock = threading.RLock()
_builtins_loaded = False


def _load_builtins() -> None:
    """Import the built-in dialect modules (each registers itself) once, on first use."""
    global _builtins_loaded
    if _builtins_loaded:
        return
    with _builtins_lock:
        if not _builtins_loaded:
            for name in BUILTIN_DIALECTS:
                importlib.import_module(f"{__package__}.dialects.{name}")
            _builtins_loaded = True


def register_dialect(d: Dialect) -> None:
    """Add (or replace) a database kind; its aliases resolve to it too."""
    _DIALECTS[d.name] = d
    for a in (d.name, *d.aliases):
        _ALIASES[a.lower()] = d.name


def get_dialect(db_type: str) -> Dialect:
    _load_builtins()
    name = _ALIASES.get((db_type or "").lower())
    if name is None:
        raise BadInput(
            f"Unknown database type {db_type!r}. Known types: {', '.join(sorted(_DIALECTS))}."
        )
    return _DIALECTS[name]


def __getattr__(name: str) -> Any:
    # `DIALECTS` is the registry with the built-ins loaded, whoever asks first.
    if name == "DIALECTS":
        _load_builtins()
        return _DIALECTS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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


def _where(spec: ConnectionSpec) -> str:
    d = spec.dialect
    return f"{spec.host or '127.0.0.1'}:{spec.port or d.default_port}"


_UNREACHABLE = (
    "connection refused", "could not connect", "can't connect", "timeout expired",
    "timed out", "name or service not known", "could not translate host",
    "failed to resolve", "nodename nor servname", "no route to host",
    "network is unreachable", "temporary failure in name resolution",
    "getaddrinfo", "connection to server at",
)


_FAILURE_ORDER = ("auth", "unknown_database", "unknown_user", "no_access", "unreachable")


def _failures_in_text(low: str) -> set[str]:
    """What a connection failure may mean, read from the driver's (lower-case) message."""
    found = set()
    if "password authentication failed" in low or "access denied for user" in low:
        found.add("auth")
    if "unknown database" in low or re.search(r"database \".*\" does not exist", low):
        found.add("unknown_database")
    if re.search(r"role \".*\" does not exist", low):
        found.add("unknown_user")
    if "permission denied for database" in low:
        found.add("no_access")
    if any(s in low for s in _UNREACHABLE):
        found.add("unreachable")
    return found


def explain_connect_error(exc: BaseException, spec: ConnectionSpec) -> DatabaseError:
    """Turn a driver's connection failure into one clear, password-free sentence."""
    if isinstance(exc, DatabaseError):
        return exc
    d = spec.dialect
    msg = scrub(d.driver_message(exc), [spec.password])
    if d.file_based:
        return DatabaseError(f"Could not open the {d.label} file {spec.host}: {msg}.")
    where = _where(spec)
    user = spec.username or ""
    db = spec.database or d.default_database or ""
    found = {*_failures_in_text(msg.lower()), d.connect_failure(exc)}
    kind = next((k for k in _FAILURE_ORDER if k in found), None)
    if kind == "auth":
        return DatabaseError(
            f"Authentication failed for user {user!r} at {where}: check the username and "
            "password.", reason="auth_failed")
    if kind == "unknown_database":
        return DatabaseError(
            f"Database {db!r} does not exist on {where}: check the database name.",
            reason="unknown_database")
    if kind == "unknown_user":
        return DatabaseError(
            f"User {user!r} does not exist on {where}: check the username.",
            reason="auth_failed")
    if kind == "no_access":
        return DatabaseError(
            f"User {user!r} may not use database {db!r} on {where}: ask for access or pick "
            "another database.", reason="auth_failed")
    if kind == "unreachable":
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
        raise DatabaseError(
            f"Cannot set up the connection: {scrub(str(exc), [spec.password])}") from None
    dialect = spec.dialect
    start = time.perf_counter()
    try:
        raw = engine.raw_connection()
    except Exception as exc:
        cache.dispose(spec.id)
        raise explain_connect_error(_unwrap(exc), spec) from None
    try:
        cur = raw.cursor()
        version = dialect.server_version(cur)
        risky = dialect.risky_privileges(cur, spec)
        cur.close()
        raw.rollback()
    except Exception as exc:
        raw.invalidate()
        cache.dispose(spec.id)
        raise DatabaseError(f"Connected, but the server failed a test query: "
                            f"{scrub(dialect.driver_message(exc), [spec.password])}") from None
    finally:
        raw.close()
    return {
        "ok": True,
        "db_type": dialect.name,
        "server_version": version,
        "latency_ms": round((time.perf_counter() - start) * 1000, 2),
        "warnings": [privilege_warning(kind, dialect) for kind in risky],
    }


#: Why a privileged login is a risk, by what the login may do.
_RISKS = {
    "superuser": "it is a superuser, which the database lets read server files, signal other "
                 "sessions and change server settings even inside a read-only transaction",
    "server_files": "it may read or write files on the database server",
    "server_admin": "it may change server-wide settings, read and write server files and "
                    "stop other sessions",
}


def privilege_warning(kind: str, dialect: Dialect) -> dict[str, Any]:
    """A warning about a privileged login, with the next step (a read-only account)."""
    return {"kind": kind,
            "message": f"This {dialect.label} login is more powerful than reading needs: "
                       f"{_RISKS.get(kind, kind)}. Only the SQL parser stands between a "
                       "question and that power; connect with a read-only account instead.",
            "action": {"kind": "readonly_role"}}


test_connection.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def _unwrap(exc: BaseException) -> BaseException:
    """SQLAlchemy wraps driver errors; DatabaseErrors raised by our creator come back as-is."""
    orig = getattr(exc, "orig", None)
    if isinstance(orig, DatabaseError):
        return orig
    return exc
