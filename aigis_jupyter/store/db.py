"""The store's engine, sessions and automatic migrations.

Local mode shares one SQLite file between the Jupyter server and every kernel, so the
file runs in WAL mode (readers never block the writer) with a busy timeout, and the
migration step takes the database's write lock first: two processes starting at once
serialize instead of both creating the same tables. On PostgreSQL an advisory lock
does the same; on MySQL/MariaDB a named lock.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from ..errors import AigisError, ServiceUnavailable, action

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "aigis_alembic_version"
SQLITE_BUSY_TIMEOUT_MS = 30_000
_PG_LOCK_KEY = 0x41_69_67_69_73  # "Aigis": one advisory lock id for our migrations
_MYSQL_LOCK_NAME = "aigis_store_migrations"
#: A server store (PostgreSQL, MySQL) is shared by every user of the process: its pool keeps
#: this many connections, opens at most this many more under load, and makes a request
#: wait this long for one before failing, so the process never holds more than
#: POOL_SIZE + POOL_MAX_OVERFLOW sessions on the store however many users it serves.
POOL_SIZE = 5
POOL_MAX_OVERFLOW = 10
POOL_TIMEOUT_S = 30.0
#: How the store's PostgreSQL sessions name themselves (`pg_stat_activity.application_name`),
#: so an operator can tell them apart; a URL's own `application_name` wins.
PG_APPLICATION_NAME = "aigis-store"


class StoreError(AigisError):
    """The store (the extension's own database) is unreachable or unusable."""

    status = 500
    reason = "store_error"


class StoreUnavailable(ServiceUnavailable):
    """The store's database server did not answer (restarting, network): a retry may work.

    Raised instead of the driver's error so every door answers 503 with what to do, and so
    nothing about the store (its host, its login) reaches the user: the log has the details.
    """

    reason = "store_unavailable"

    def __init__(self) -> None:
        super().__init__(
            "The store's database did not answer, so this request could not be saved. "
            "Retry in a moment; if it keeps failing, the store's database server needs "
            "checking (an admin can see why in the server log).",
            action=action("retry"))


def _unreachable(exc: BaseException) -> bool:
    """A lost or refused connection, not a bad statement: what a restart looks like."""
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError) and not (
        isinstance(exc.orig, Exception) and "locked" in str(exc.orig).lower())


def alembic_config(url: str | URL | None = None) -> Any:
    """An Alembic Config pointing into the installed package (works from a wheel)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if url is not None:
        text = url.render_as_string(hide_password=False) if isinstance(url, URL) else url
        cfg.set_main_option("sqlalchemy.url", text.replace("%", "%%"))
    return cfg


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


_REVISION = re.compile(r"^(down_revision|revision)\s*=\s*['\"]?([\w-]+|None)['\"]?\s*$", re.M)


def head_at_a_glance() -> str | None:
    """The head revision read straight from the version files' `revision` and
    `down_revision` lines: the one no other revision follows (Alembic's own reading costs a
    quarter of a second of imports, on every start). None when that is not one revision."""
    revisions, parents = set(), set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        found = dict((k, v) for k, v in _REVISION.findall(path.read_text(encoding="utf-8")))
        if "revision" in found:
            revisions.add(found["revision"])
            parents.add(found.get("down_revision"))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _recorded_revision(conn: Connection) -> str | None:
    """The revision the store records, by plain SQL (None when it has no version table)."""
    try:
        rows = conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).fetchall()
    except sa.exc.SQLAlchemyError:
        conn.rollback()
        return None
    return str(rows[0][0]) if len(rows) == 1 else None


def _current_revision(conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    return ctx.get_current_revision()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    try:
        cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = NORMAL")
    finally:
        cur.close()


class Store:
    """The extension's own database (users, connections, threads, messages, audit)."""

    def __init__(self, url: str | URL, *, migrate: bool = True, echo: bool = False) -> None:
        self.url = sa.engine.make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if self.is_sqlite:
            db = self.url.database or ""
            if not db or db == ":memory:" or db.startswith("file:"):
                raise StoreError("The store needs a SQLite file, not an in-memory database: "
                                 "point AIGIS_DATABASE_URL at sqlite:////path/to/aigis.sqlite.")
            Path(db).expanduser().parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
                                      "check_same_thread": False}
        else:
            kwargs.update(pool_pre_ping=True, pool_size=POOL_SIZE,
                          max_overflow=POOL_MAX_OVERFLOW, pool_timeout=POOL_TIMEOUT_S)
            if (self.url.get_backend_name() == "postgresql"
                    and "application_name" not in self.url.query):
                kwargs["connect_args"] = {"application_name": PG_APPLICATION_NAME}
        self.engine: Engine = sa.create_engine(self.url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        if migrate:
            self.upgrade()

    def __repr__(self) -> str:
        return f"Store({self.safe_url!r})"

    @property
    def max_connections(self) -> int | None:
        """The most sessions this store's engine opens at once (None: SQLite, a file)."""
        return None if self.is_sqlite else POOL_SIZE + POOL_MAX_OVERFLOW

    @property
    def safe_url(self) -> str:
        return self.url.render_as_string(hide_password=True)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed when the block ends, rolled back on error."""
        s = self._sessions()
        try:
            yield s
            s.commit()
        except BaseException as exc:
            try:
                s.rollback()
            except sa.exc.SQLAlchemyError:
                log.debug("aigis: rollback after a failed store session failed too")
            if _unreachable(exc):
                log.warning("aigis: the store at %s did not answer: %s", self.safe_url,
                            getattr(exc, "orig", None) or type(exc).__name__)
                raise StoreUnavailable() from exc
            raise
        finally:
            s.close()

    # -- migrations -----------------------------------------------------------------
    def current_revision(self) -> str | None:
        with self.engine.connect() as conn:
            return _current_revision(conn)

    def upgrade(self, revision: str = "head") -> str | None:
        """Bring the schema to ``revision`` (default head); safe with concurrent callers."""
        try:
            if revision == "head":  # already there: no Alembic import at all
                glance = head_at_a_glance()
                with self.engine.connect() as conn:
                    if glance is not None and _recorded_revision(conn) == glance:
                        return glance
            head = head_revision()
            if revision == "head" and self.current_revision() == head:
                return head
            if self.is_sqlite:
                self._upgrade_sqlite(revision)
            else:
                self._upgrade_locked(revision)
            return self.current_revision()
        except AigisError:
            raise
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(
                f"Could not open or migrate the store at {self.safe_url}: "
                f"{exc.__class__.__name__}: {getattr(exc, 'orig', exc)}. Check "
                "AIGIS_DATABASE_URL (or the data dir's permissions) and that the database "
                "server is running."
            ) from exc

    def _run_alembic(self, conn: Connection, revision: str) -> None:
        from alembic import command

        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)

    def _upgrade_sqlite(self, revision: str) -> None:
        # A dedicated engine whose transactions start with BEGIN IMMEDIATE: the write lock
        # is held from the version check to the commit, so a second process waits (busy
        # timeout), then finds the schema at head and does nothing.
        eng = sa.create_engine(self.url, poolclass=sa.pool.NullPool,
                               connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

        @event.listens_for(eng, "connect")
        def _connect(dbapi_conn: Any, record: Any) -> None:
            _sqlite_pragmas(dbapi_conn, record)
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves

        @event.listens_for(eng, "begin")
        def _begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        try:
            with eng.begin() as conn:
                self._run_alembic(conn, revision)
        finally:
            eng.dispose()

    def _upgrade_locked(self, revision: str) -> None:
        backend = self.url.get_backend_name()
        with self.engine.connect() as conn:
            if backend == "postgresql":
                with conn.begin():
                    # transaction-scoped: released at commit, DDL is transactional here
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
                    self._run_alembic(conn, revision)
            elif backend in ("mysql", "mariadb"):
                got = conn.execute(sa.text("SELECT GET_LOCK(:n, 120)"),
                                   {"n": _MYSQL_LOCK_NAME}).scalar()
                conn.commit()
                if got != 1:
                    raise StoreError("Timed out waiting for another process to migrate the store; "
                                     "try again in a minute.")
                try:
                    with conn.begin():
                        self._run_alembic(conn, revision)
                finally:
                    conn.execute(sa.text("SELECT RELEASE_LOCK(:n)"), {"n": _MYSQL_LOCK_NAME})
                    conn.commit()
            else:
                with conn.begin():
                    self._run_alembic(conn, revision)

    # -- health ---------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """Store connectivity and whether the schema is at the newest migration."""
        out: dict[str, Any] = {"url": self.safe_url, "backend": self.url.get_backend_name()}
        try:
            head = head_revision()
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
                current = _current_revision(conn)
                if self.is_sqlite:
                    out["journal_mode"] = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
        except Exception as exc:
            out.update(ok=False, connected=False, at_head=False,
                       error=f"{exc.__class__.__name__}: {getattr(exc, 'orig', exc)}")
            return out
        out.update(ok=current == head, connected=True, revision=current, head=head,
                   at_head=current == head)
        if current != head:
            out["error"] = "The store is not at the newest migration; upgrade it."
            out["action"] = action("upgrade_store")
        return out

    def dispose(self) -> None:
        self.engine.dispose()


__all__ = ["MIGRATIONS_DIR", "PG_APPLICATION_NAME", "POOL_MAX_OVERFLOW", "POOL_SIZE",
           "VERSION_TABLE", "Store", "StoreError", "alembic_config", "head_revision"]
