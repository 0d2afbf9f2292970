"""The user-scoped API of the core: every front door (magics, REST, hub, CLI) calls this.

`AigisService` owns the shared pieces (store, vault, engine cache, model registry, agent
runner); `AigisService.user(name)` hands out a `UserScope` whose every method acts for
that one user. Rules live here and below, never in a front door: a connection, thread
or message of somebody else is `NotFound` (404, never 403), passwords go in and never
come out, and every statement run on a user's database leaves an audit row.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import re
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from . import __version__
from .errors import (
    AigisError,
    BadInput,
    Conflict,
    DatabaseError,
    Forbidden,
    NotFound,
    SQLRefused,
    VaultError,
)
from .settings import Settings

if TYPE_CHECKING:
    import pandas as pd

    from .databases.engines import ConnectionSpec, EngineCache
    from .databases.execute import CancelToken, QueryResult
    from .models import ModelRegistry
    from .store.db import Store
    from .store.models import AuditLog, Connection, Message, Thread, User
    from .store.repo import OwnerRepo
    from .vault import Vault

CONNECTION_FIELDS = ("name", "db_type", "host", "port", "database", "username", "password",
                     "options", "allow_write")
MESSAGE_ROLES = ("user", "assistant", "tool", "system")
_NAME_RE = re.compile(r"^[^\x00-\x1f\x7f]{1,100}$")
_AUDIT_SQL_MAX = 20_000
_PASSWORD_PURPOSE = "connection.password"
_LAST_RESULTS_KEPT = 32


def _iso(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    if dt.tzinfo is None:  # SQLite and MySQL hand back naive UTC
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.isoformat()


def _scrub(text: str | None, secret: str | None) -> str | None:
    """Remove a secret from a message before it is shown or stored anywhere.

    Passwords of one or two characters are left alone: replacing them would garble every
    message (and such a password protects nothing anyway)."""
    if text and secret and len(secret) >= 3:
        return text.replace(secret, "***")
    return text


# -- row -> dict ----------------------------------------------------------------------

def user_dict(u: User) -> dict[str, Any]:
    return {"id": u.id, "username": u.username, "display_name": u.display_name,
            "email": u.email, "is_admin": bool(u.is_admin), "created_at": _iso(u.created_at),
            "updated_at": _iso(u.updated_at)}


def connection_dict(c: Connection) -> dict[str, Any]:
    """A connection as the outside sees it: never the password, only whether one is set."""
    return {"id": c.id, "name": c.name, "db_type": c.db_type, "host": c.host, "port": c.port,
            "database": c.database, "username": c.username,
            "has_password": bool(c.password_sealed), "allow_write": bool(c.allow_write),
            "options": dict(c.options or {}), "created_at": _iso(c.created_at),
            "updated_at": _iso(c.updated_at)}


def thread_dict(t: Thread, connection_name: str | None = None) -> dict[str, Any]:
    return {"id": t.id, "title": t.title, "connection_id": t.connection_id,
            "connection_name": connection_name, "model_name": t.model_name,
            "created_at": _iso(t.created_at), "updated_at": _iso(t.updated_at)}


def message_dict(m: Message) -> dict[str, Any]:
    return {"id": m.id, "thread_id": m.thread_id, "role": m.role, "content": m.content,
            "payload": m.payload, "created_at": _iso(m.created_at)}


def audit_dict(a: AuditLog) -> dict[str, Any]:
    return {"id": a.id, "created_at": _iso(a.created_at), "username": a.username,
            "connection_id": a.connection_id, "connection_name": a.connection_name,
            "db_type": a.db_type, "thread_id": a.thread_id, "sql": a.sql, "status": a.status,
            "row_count": a.row_count, "duration_ms": a.duration_ms, "error": a.error}


def model_dict(info: Any) -> dict[str, Any]:
    return {"name": info.name, "provider": getattr(info, "provider", None),
            "aliases": list(getattr(info, "aliases", ()) or ()),
            "available": bool(getattr(info, "available", False)),
            "reason": getattr(info, "reason", None),
            "supports_tools": getattr(info, "supports_tools", None)}


# -- validation -----------------------------------------------------------------------

def _opt_str(data: Mapping[str, Any], key: str, *, max_len: int = 255) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadInput(f"'{key}' must be text, got {type(value).__name__}.")
    value = value.strip()
    if len(value) > max_len:
        raise BadInput(f"'{key}' is too long (at most {max_len} characters).")
    return value or None


def _validate_connection(data: Mapping[str, Any]) -> dict[str, Any]:
    """Normalise connection fields; BadInput says exactly which one is wrong and why."""
    from .databases.engines import get_dialect

    unknown = sorted(set(data) - set(CONNECTION_FIELDS))
    if unknown:
        raise BadInput(f"Unknown connection field(s): {', '.join(unknown)}. "
                       f"Known fields: {', '.join(CONNECTION_FIELDS)}.")
    name = _opt_str(data, "name", max_len=100)
    if not name:
        raise BadInput("A connection needs a 'name' (how you will refer to it, e.g. 'sales').")
    if not _NAME_RE.match(name):
        raise BadInput("The connection name must be 1-100 printable characters.")
    db_type = _opt_str(data, "db_type", max_len=32)
    if not db_type:
        raise BadInput("A connection needs a 'db_type' (postgres, mysql or sqlite).")
    db_type = db_type.lower()
    dialect = get_dialect(db_type)  # BadInput listing the known types
    host = _opt_str(data, "host", max_len=1024)
    port_raw = data.get("port")
    port: int | None = None
    if port_raw not in (None, ""):
        try:
            port = int(port_raw)
            if isinstance(port_raw, bool) or str(port) != str(port_raw).strip():
                raise ValueError
        except (TypeError, ValueError):
            raise BadInput(f"'port' must be a whole number, got {port_raw!r}.") from None
        if not 1 <= port <= 65535:
            raise BadInput(f"'port' must be between 1 and 65535, got {port}.")
    database = _opt_str(data, "database")
    username = _opt_str(data, "username")
    password = data.get("password")
    if password is not None and not isinstance(password, str):
        raise BadInput("'password' must be text.")
    allow_write = data.get("allow_write", False)
    if allow_write is None:
        allow_write = False
    if not isinstance(allow_write, bool):
        raise BadInput("'allow_write' must be true or false.")
    options_raw = data.get("options") or {}
    if not isinstance(options_raw, Mapping):
        raise BadInput("'options' must be an object of driver options, e.g. {\"sslmode\": "
                       "\"require\"}.")
    options: dict[str, str] = {}
    for k, v in options_raw.items():
        if not isinstance(k, str) or not k or isinstance(v, (dict, list, tuple)) or v is None:
            raise BadInput(f"Connection option {k!r} must map a name to a plain value.")
        options[k] = str(v).lower() if isinstance(v, bool) else str(v)

    db_type = dialect.name  # aliases (postgresql, mariadb, sqlite3) become the registry key
    if dialect.file_based:
        if not host:
            raise BadInput(f"A {db_type} connection needs 'host' set to the database file's "
                           "path.")
        host = os.path.abspath(os.path.expanduser(host))
        port = database = username = None
        password = None
    else:
        if not host:
            raise BadInput(f"A {db_type} connection needs a 'host' (server name or address).")
        if any(ch.isspace() for ch in host) or "/" in host:
            raise BadInput(f"'host' must be a server name or address, got {host!r}.")
        database = database or dialect.default_database
        if not database:
            raise BadInput(f"A {db_type} connection needs a 'database' (the database to open "
                           "on that server).")
        if port is None:
            port = dialect.default_port
    from .databases.engines import ConnectionSpec

    dialect.check_options(ConnectionSpec(id="", db_type=db_type, options=options))
    return {"name": name, "db_type": db_type, "host": host, "port": port, "database": database,
            "username": username, "password": password, "options": options,
            "allow_write": allow_write, "file_based": bool(dialect.file_based)}


# -- the agent's view of the service ---------------------------------------------------

@dataclass
class _Turn:
    scope: UserScope
    thread_id: str


# Set by UserScope.chat for the duration of a turn: the agent's calls back into the
# service (schema, SQL) act for that user and no one else.
_CURRENT_TURN: contextvars.ContextVar[_Turn | None] = contextvars.ContextVar(
    "aigis_current_turn", default=None)


class ServiceDeps:
    """`AgentDeps` on the service side: scoped to the user whose chat turn is running."""

    def __init__(self, service: AigisService) -> None:
        self.service = service

    def _turn(self) -> _Turn:
        turn = _CURRENT_TURN.get()
        if turn is None:
            raise Forbidden("The agent asked for data outside a chat turn; this is refused.")
        return turn

    def schema_text(self, connection_id: str, question: str) -> str:
        from .databases.schema import render, snapshot

        scope = self._turn().scope
        spec = scope.connection_spec(connection_id)
        engine = self.service.engines.get(spec)
        snap = snapshot(engine, spec)
        return render(snap, question=question,
                      token_budget=self.service.settings.schema_token_budget)

    def dialect(self, connection_id: str) -> str:
        from .databases.engines import get_dialect

        conn = self._turn().scope.get_connection(connection_id)
        d = get_dialect(conn["db_type"])
        return str(getattr(d, "sqlglot_dialect", None) or conn["db_type"])

    def run_sql(self, connection_id: str, sql: str,
                cancel: CancelToken | None = None) -> QueryResult:
        turn = self._turn()
        return turn.scope.run_sql(connection_id, sql, thread_id=turn.thread_id, cancel=cancel)


# -- the service ----------------------------------------------------------------------

class AigisService:
    """Shared state of one process: store, vault, engines, models, the agent runner."""

    def __init__(self, settings: Settings | None = None, *, store: Store | None = None) -> None:
        from .store.db import Store

        self.settings = settings or Settings.from_env()
        self.store = store or Store(self.settings.store_url)
        self._lock = threading.RLock()
        self._vault: Vault | None = None
        self._engines: EngineCache | None = None
        self._models: ModelRegistry | None = None
        self._runner: Any = None
        self._cancels: dict[str, Any] = {}
        # last result per (user, thread), newest last; bounded: each holds a DataFrame
        self._last: OrderedDict[tuple[str, str], QueryResult] = OrderedDict()

    def __repr__(self) -> str:
        return f"AigisService(store={self.store.safe_url!r})"

    # lazily built: each costs an import or a key derivation that not every caller needs
    @property
    def vault(self) -> Vault:
        with self._lock:
            if self._vault is None:
                from .vault import Vault

                self._vault = Vault.from_settings(self.settings)
            return self._vault

    @property
    def engines(self) -> EngineCache:
        with self._lock:
            if self._engines is None:
                from .databases.engines import EngineCache

                self._engines = EngineCache()
            return self._engines

    @property
    def models(self) -> ModelRegistry:
        with self._lock:
            if self._models is None:
                from .models import ModelRegistry

                self._models = ModelRegistry(self.settings)
            return self._models

    def runner(self) -> Any:
        """The agent runner (built on first chat; LangGraph is heavy to import)."""
        with self._lock:
            if self._runner is None:
                from .agent.runner import AgentRunner

                self._runner = AgentRunner(registry=self.models,
                                           checkpointer_url_or_saver=self.settings.store_url,
                                           deps=ServiceDeps(self), settings=self.settings)
            return self._runner

    def user(self, username: str, *, is_admin: bool | None = None,
             display_name: str | None = None) -> UserScope:
        """Get or create the user the front door authenticated; returns their scope.

        ``is_admin`` comes from the identity provider (Jupyter / the hub): True or False
        updates the stored flag, None keeps it.
        """
        import sqlalchemy as sa

        from .store.repo import UserRepo

        if not isinstance(username, str) or not username.strip() or len(username) > 255:
            raise BadInput("A user name (1-255 characters) is required.")
        username = username.strip()
        for _attempt in range(2):
            try:
                with self.store.session() as s:
                    repo = UserRepo(s)
                    u = repo.by_username(username)
                    if u is None:
                        u = repo.add(username, display_name=display_name,
                                     is_admin=bool(is_admin))
                    else:
                        changed = False
                        if is_admin is not None and bool(u.is_admin) != is_admin:
                            u.is_admin, changed = is_admin, True
                        if display_name and u.display_name != display_name:
                            u.display_name, changed = display_name, True
                        if changed:
                            u.updated_at = datetime.now(timezone.utc)
                    return UserScope(self, user_dict(u))
            except sa.exc.IntegrityError:
                continue  # another process created the same user at the same moment
        raise Conflict(f"Could not create user {username!r}; try again.")

    def health(self) -> dict[str, Any]:
        """Store connectivity, migrations at head, and which key source is configured."""
        store = self.store.health()
        return {"ok": bool(store.get("ok")), "version": __version__, "store": store,
                "vault": {"mode": "master_key" if self.settings.master_keys else "key_file"}}

    def rotate_keys(self) -> int:
        """Re-seal every stored password with the primary key; all rows or none.

        Returns how many rows were re-sealed (rows already on the primary key are left).
        """
        from .store.repo import UserRepo

        vault = self.vault
        count = 0
        with self.store.session() as s:
            for row in UserRepo(s).all_connections():
                if not row.password_sealed:
                    continue
                try:
                    if not vault.needs_rotation(row.password_sealed):
                        continue
                    row.password_sealed = vault.reseal(row.password_sealed, owner_id=row.owner_id,
                                                       row_id=row.id, purpose=_PASSWORD_PURPOSE)
                except VaultError as exc:
                    raise VaultError(f"Nothing was rotated: connection {row.name!r} (id {row.id}) "
                                     f"failed: {exc.message}", reason=exc.reason) from None
                count += 1
        return count

    def forget_connection(self, conn_id: str) -> None:
        """Drop everything cached for a connection (engine pool, schema snapshot)."""
        if self._engines is not None:
            self._engines.dispose(conn_id)
        schema = sys.modules.get("aigis_jupyter.databases.schema")
        if schema is not None:
            schema.clear_cache(conn_id)

    def close(self) -> None:
        if self._engines is not None:
            self._engines.dispose_all()
        self.store.dispose()


class UserScope:
    """Everything one user may do; other users' objects raise NotFound."""

    def __init__(self, service: AigisService, user: dict[str, Any]) -> None:
        self.service = service
        self.user = user

    def __repr__(self) -> str:
        return f"UserScope(user={self.user['username']!r})"

    @property
    def settings(self) -> Settings:
        return self.service.settings

    @property
    def user_id(self) -> str:
        return str(self.user["id"])

    @property
    def is_admin(self) -> bool:
        return bool(self.user.get("is_admin"))

    def _session(self) -> Any:
        return self.service.store.session()

    def _repo(self, s: Any) -> OwnerRepo:
        from .store.repo import OwnerRepo

        return OwnerRepo(s, self.user_id)

    def _require_admin(self) -> None:
        if not self.is_admin:
            raise Forbidden("Only administrators can manage other users.")

    # -- users ----------------------------------------------------------------------
    def me(self) -> dict[str, Any]:
        from .store.repo import UserRepo

        with self._session() as s:
            try:
                u = UserRepo(s).get(self.user_id)
            except NotFound:
                raise NotFound("Your user no longer exists; sign in again.") from None
            self.user = user_dict(u)
        return dict(self.user)

    def update_me(self, **fields: Any) -> dict[str, Any]:
        """Change your display name or email (the user name is your Jupyter identity)."""
        from .store.repo import UserRepo

        allowed = {"display_name", "email"}
        unknown = sorted(set(fields) - allowed)
        if unknown:
            raise BadInput(f"Cannot change {', '.join(unknown)}; you can change: "
                           f"{', '.join(sorted(allowed))}.")
        values = {k: _opt_str(fields, k, max_len=320 if k == "email" else 255) for k in fields}
        email = values.get("email")
        if email and not re.match(r"^[^@\s]+@[^@\s]+$", email):
            raise BadInput(f"{email!r} does not look like an email address.")
        with self._session() as s:
            u = UserRepo(s).get(self.user_id)
            for k, v in values.items():
                setattr(u, k, v)
            u.updated_at = datetime.now(timezone.utc)
            s.flush()
            self.user = user_dict(u)
        return dict(self.user)

    def list_users(self) -> list[dict[str, Any]]:
        from .store.repo import UserRepo

        self._require_admin()
        with self._session() as s:
            return [user_dict(u) for u in UserRepo(s).list()]

    def get_user(self, user_id: str) -> dict[str, Any]:
        from .store.repo import UserRepo

        self._require_admin()
        with self._session() as s:
            return user_dict(UserRepo(s).get(user_id))

    def delete_user(self, user_id: str) -> None:
        """Remove a user with their connections, threads and messages (audit rows stay)."""
        from .store.repo import UserRepo

        self._require_admin()
        if user_id == self.user_id:
            raise BadInput("You cannot delete your own user while signed in as it.")
        with self._session() as s:
            repo = UserRepo(s)
            u = repo.get(user_id)
            from .store.repo import OwnerRepo

            conn_ids = [c.id for c in OwnerRepo(s, u.id).connections()]
            repo.delete(u)
        for cid in conn_ids:
            self.service.forget_connection(cid)

    # -- connections ----------------------------------------------------------------
    def list_connections(self) -> list[dict[str, Any]]:
        with self._session() as s:
            return [connection_dict(c) for c in self._repo(s).connections()]

    def get_connection(self, ref: str) -> dict[str, Any]:
        with self._session() as s:
            return connection_dict(self._repo(s).connection(ref))

    def _spec(self, row: Connection, password: str | None) -> ConnectionSpec:
        from .databases.engines import ConnectionSpec

        return ConnectionSpec(id=row.id, db_type=row.db_type, host=row.host, port=row.port,
                              database=row.database, username=row.username, password=password,
                              options=dict(row.options or {}), allow_write=bool(row.allow_write),
                              version=_iso(row.updated_at) or "")

    def _open_password(self, row: Connection) -> str | None:
        if not row.password_sealed:
            return None
        return self.service.vault.open(row.password_sealed, owner_id=row.owner_id, row_id=row.id,
                                       purpose=_PASSWORD_PURPOSE)

    def _test_spec(self, spec: ConnectionSpec, *, keep_engine: bool = False) -> dict[str, Any]:
        """Connect and run a trivial query; the error never carries the password.

        A spec that is not (yet) saved must not leave an engine behind: `keep_engine`
        only for a stored connection, whose engine the next query reuses.
        """
        from .databases.engines import test_connection

        try:
            return test_connection(spec, self.service.engines)
        except AigisError as exc:
            exc.message = _scrub(exc.message, spec.password) or exc.message
            exc.args = (exc.message,)
            raise
        finally:
            if not keep_engine:
                self.service.engines.dispose(spec.id)

    def create_connection(self, data: Mapping[str, Any], *, test: bool = False) -> dict[str, Any]:
        """Save a connection; with ``test=True`` it is saved only if it connects."""
        import sqlalchemy as sa

        from .store.models import Connection, new_id

        if not isinstance(data, Mapping):
            raise BadInput("A connection must be given as an object of fields.")
        v = _validate_connection(data)
        now = datetime.now(timezone.utc)
        row = Connection(id=new_id(), owner_id=self.user_id, name=v["name"],
                         db_type=v["db_type"], host=v["host"], port=v["port"],
                         database=v["database"], username=v["username"], options=v["options"],
                         allow_write=v["allow_write"], created_at=now, updated_at=now)
        with self._session() as s:
            repo = self._repo(s)
            if repo.connection_by_name(v["name"]) is not None:
                raise Conflict(f"You already have a connection named {v['name']!r}; pick "
                               "another name or update that one.")
        if test:
            self._test_spec(self._spec(row, v["password"]))
        if v["password"]:
            row.password_sealed = self.service.vault.seal(
                v["password"], owner_id=self.user_id, row_id=row.id, purpose=_PASSWORD_PURPOSE)
        try:
            with self._session() as s:
                self._repo(s).add_connection(row)
                out = connection_dict(row)
        except sa.exc.IntegrityError:
            raise Conflict(f"You already have a connection named {v['name']!r}.") from None
        return out

    def update_connection(self, ref: str, data: Mapping[str, Any], *,
                          test: bool = False) -> dict[str, Any]:
        """Change some fields. ``password``: absent or None keeps it, "" removes it."""
        import sqlalchemy as sa

        if not isinstance(data, Mapping):
            raise BadInput("Connection changes must be given as an object of fields.")
        try:
            with self._session() as s:
                repo = self._repo(s)
                row = repo.connection(ref)
                current = {k: getattr(row, k) for k in CONNECTION_FIELDS if k != "password"}
                merged = {**current, **{k: v for k, v in data.items() if k != "password"}}
                if "password" in data:
                    merged["password"] = data["password"]
                v = _validate_connection(merged)
                if v["name"] != row.name and repo.connection_by_name(v["name"]) is not None:
                    raise Conflict(f"You already have a connection named {v['name']!r}.")
                new_password: str | None
                if v["file_based"]:
                    new_password = None
                elif data.get("password") is None:
                    new_password = self._open_password(row)
                else:
                    new_password = v["password"] or None
                for k in ("name", "db_type", "host", "port", "database", "username", "options",
                          "allow_write"):
                    setattr(row, k, v[k])
                row.updated_at = datetime.now(timezone.utc)
                row.password_sealed = (
                    self.service.vault.seal(new_password, owner_id=self.user_id, row_id=row.id,
                                            purpose=_PASSWORD_PURPOSE)
                    if new_password else None)
                if test:
                    # raises before the commit: the stored row stays as it was
                    self._test_spec(self._spec(row, new_password))
                s.flush()
                out = connection_dict(row)
        except sa.exc.IntegrityError:
            raise Conflict("You already have a connection with that name.") from None
        self.service.forget_connection(out["id"])
        return out

    def delete_connection(self, ref: str) -> None:
        with self._session() as s:
            repo = self._repo(s)
            row = repo.connection(ref)
            conn_id = row.id
            repo.delete_connection(row)
        self.service.forget_connection(conn_id)

    def connection_spec(self, ref: str) -> ConnectionSpec:
        """The connection with its clear password: for the executor and agent, never output."""
        with self._session() as s:
            row = self._repo(s).connection(ref)
            return self._spec(row, self._open_password(row))

    def test_connection(self, ref: str) -> dict[str, Any]:
        """Connect and run a trivial query; DatabaseError says what went wrong."""
        return self._test_spec(self.connection_spec(ref), keep_engine=True)

    # -- SQL ------------------------------------------------------------------------
    def run_sql(self, ref: str, sql: str, *, max_rows: int | None = None,
                thread_id: str | None = None, cancel: CancelToken | None = None) -> QueryResult:
        """Guard, run and audit one statement on one of your connections."""
        from .databases.execute import run_query

        if not isinstance(sql, str) or not sql.strip():
            raise BadInput("No SQL given.")
        cap = self.settings.max_rows
        if max_rows is not None:
            if max_rows < 0:
                raise BadInput("max_rows must be zero or more.")
            cap = min(cap, max_rows)
        with self._session() as s:
            repo = self._repo(s)
            if thread_id is not None:
                repo.thread(thread_id)
            row = repo.connection(ref)
            name, db_type = row.name, row.db_type
            spec = self._spec(row, self._open_password(row))
        status, rows, error = "error", None, None
        t0 = time.perf_counter()
        try:
            engine = self.service.engines.get(spec)
            result = run_query(engine, spec, sql, max_rows=cap,
                               timeout_s=self.settings.statement_timeout_s, cancel=cancel)
            status, rows = "ok", result.row_count
        except SQLRefused as exc:
            status, error = "refused", _scrub(exc.message, spec.password)
            raise
        except AigisError as exc:
            error = _scrub(f"{exc.reason}: {exc.message}", spec.password)
            exc.message = _scrub(exc.message, spec.password) or exc.message
            exc.args = (exc.message,)
            raise
        except Exception as exc:
            error = _scrub(f"{exc.__class__.__name__}: {exc}", spec.password)
            raise DatabaseError(f"The query failed: {error}") from None
        finally:
            duration = (time.perf_counter() - t0) * 1000
            with self._session() as s:
                self._repo(s).add_audit(
                    username=self.user["username"], connection_id=spec.id, connection_name=name,
                    db_type=db_type, thread_id=thread_id,
                    sql=(_scrub(sql, spec.password) or sql)[:_AUDIT_SQL_MAX],
                    status=status, row_count=rows, duration_ms=round(duration, 3),
                    error=error[:_AUDIT_SQL_MAX] if error else None)
        if thread_id is not None:
            last = self.service._last
            last[(self.user_id, thread_id)] = result
            last.move_to_end((self.user_id, thread_id))
            while len(last) > _LAST_RESULTS_KEPT:
                last.popitem(last=False)
        return result

    def last_result(self, thread_id: str) -> pd.DataFrame | None:
        """The DataFrame of the last query run in this thread by this process, if any."""
        self.get_thread(thread_id)
        res = self.service._last.get((self.user_id, thread_id))
        return None if res is None else res.df

    def audit_log(self, *, limit: int = 100, all_users: bool = False) -> list[dict[str, Any]]:
        """Your statements, newest first (admins may ask for everyone's)."""
        from .store.repo import UserRepo

        limit = max(1, min(int(limit), 10_000))
        with self._session() as s:
            if all_users:
                self._require_admin()
                rows = UserRepo(s).audit(limit=limit)
            else:
                rows = self._repo(s).audit(limit=limit)
            return [audit_dict(a) for a in rows]

    # -- threads and messages ----------------------------------------------------------
    def _thread_out(self, s: Any, t: Thread) -> dict[str, Any]:
        name = None
        if t.connection_id:
            try:
                name = self._repo(s).connection(t.connection_id).name
            except NotFound:
                name = None
        return thread_dict(t, name)

    def create_thread(self, title: str | None = None, *, connection: str | None = None,
                      model: str | None = None) -> dict[str, Any]:
        """A new chat thread, optionally with its connection and model already picked."""
        from .store.models import Thread

        title = _opt_str({"title": title}, "title")
        model_name = self.service.models.resolve(model).name if model else None
        with self._session() as s:
            repo = self._repo(s)
            conn_id = repo.connection(connection).id if connection else None
            t = repo.add_thread(Thread(title=title, connection_id=conn_id,
                                       model_name=model_name))
            return self._thread_out(s, t)

    def list_threads(self) -> list[dict[str, Any]]:
        with self._session() as s:
            repo = self._repo(s)
            names = {c.id: c.name for c in repo.connections()}
            return [thread_dict(t, names.get(t.connection_id or "")) for t in repo.threads()]

    def get_thread(self, thread_id: str) -> dict[str, Any]:
        with self._session() as s:
            return self._thread_out(s, self._repo(s).thread(thread_id))

    def rename_thread(self, thread_id: str, title: str | None) -> dict[str, Any]:
        title = _opt_str({"title": title}, "title")
        with self._session() as s:
            t = self._repo(s).thread(thread_id)
            t.title = title
            t.updated_at = datetime.now(timezone.utc)
            return self._thread_out(s, t)

    def delete_thread(self, thread_id: str) -> None:
        with self._session() as s:
            repo = self._repo(s)
            repo.delete_thread(repo.thread(thread_id))
        self.service._last.pop((self.user_id, thread_id), None)
        runner = self.service._runner
        forget = getattr(runner, "delete_thread", None)
        if callable(forget):
            forget(thread_id)

    def get_messages(self, thread_id: str) -> list[dict[str, Any]]:
        with self._session() as s:
            return [message_dict(m) for m in self._repo(s).messages(thread_id)]

    def add_message(self, thread_id: str, role: str, content: str,
                    payload: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Store one chat message; the first user message also names an untitled thread."""
        if role not in MESSAGE_ROLES:
            raise BadInput(f"Unknown message role {role!r}; use one of {', '.join(MESSAGE_ROLES)}.")
        if not isinstance(content, str):
            raise BadInput("A message's content must be text.")
        data: dict[str, Any] | None = None
        if payload is not None:
            try:
                data = json.loads(json.dumps(dict(payload), allow_nan=False, default=str))
            except (TypeError, ValueError) as exc:
                raise BadInput(f"The message payload is not JSON-serialisable: {exc}") from None
        with self._session() as s:
            repo = self._repo(s)
            m = repo.add_message(thread_id, role, content, data)
            if role == "user":
                t = repo.thread(thread_id)
                if not t.title:
                    t.title = " ".join(content.split())[:80] or None
            return message_dict(m)

    def set_thread_connection(self, thread_id: str, ref: str | None) -> dict[str, Any]:
        """Pick the connection a thread asks (None clears it)."""
        with self._session() as s:
            repo = self._repo(s)
            t = repo.thread(thread_id)
            t.connection_id = repo.connection(ref).id if ref else None
            t.updated_at = datetime.now(timezone.utc)
            s.flush()
            return self._thread_out(s, t)

    def list_models(self) -> list[dict[str, Any]]:
        """Every model this deployment knows, with availability and how to enable it."""
        return [model_dict(m) for m in self.service.models.list()]

    def ensure_demo(self, path: str | os.PathLike[str] | None = None,
                    name: str = "demo") -> dict[str, Any]:
        """Build the demo database (idempotent) and register it as connection `name`.

        Returns the connection with `status`: created, unchanged or updated.
        """
        from pathlib import Path

        from .demo import build_demo_sqlite

        target = Path(path).expanduser() if path else self.settings.data_dir / "demo.sqlite"
        target = Path(build_demo_sqlite(target)).resolve()
        try:
            existing: dict[str, Any] | None = self.get_connection(name)
        except NotFound:
            existing = None
        if existing is None:
            conn, status = self.create_connection(
                {"name": name, "db_type": "sqlite", "host": str(target)}, test=True), "created"
        elif existing["db_type"] == "sqlite" and existing["host"] == str(target):
            conn, status = existing, "unchanged"
        else:
            conn, status = self.update_connection(
                name, {"db_type": "sqlite", "host": str(target)}, test=True), "updated"
        return {**conn, "status": status}

    def get_thread_model(self, thread_id: str) -> dict[str, Any]:
        """The thread's model and every known model with its availability."""
        thread = self.get_thread(thread_id)
        infos = [model_dict(m) for m in self.service.models.list()]
        return {"thread_id": thread["id"], "model": thread["model_name"], "models": infos,
                "available": {m["name"]: m["available"] for m in infos}}

    def set_thread_model(self, thread_id: str, name: str | None) -> dict[str, Any]:
        """Pick the thread's model by name or alias (None clears it)."""
        self.get_thread(thread_id)  # NotFound first: never reveal anything on others' threads
        model_name = None
        if name:
            info = self.service.models.resolve(name)  # BadInput listing the known ones
            if not getattr(info, "available", True):
                raise BadInput(f"Model {info.name!r} is not available here: "
                               f"{getattr(info, 'reason', '') or 'no provider configured'}.")
            model_name = info.name
        with self._session() as s:
            t = self._repo(s).thread(thread_id)
            t.model_name = model_name
            t.updated_at = datetime.now(timezone.utc)
        return self.get_thread_model(thread_id)

    def thread_state(self, thread_id: str) -> dict[str, Any]:
        """The agent's checkpointed state of a thread (schema used, last SQL result...)."""
        self.get_thread(thread_id)
        return dict(self.service.runner().state(thread_id))

    # -- chat -----------------------------------------------------------------------
    async def chat(self, thread_id: str, text: str, *, connection: str | None = None,
                   model: str | None = None, chart: bool = True,
                   **options: Any) -> AsyncIterator[dict[str, Any]]:
        """One chat turn as a stream of events (DESIGN.md); both sides are stored."""
        from .databases.execute import CancelToken

        thread = self.get_thread(thread_id)
        if not isinstance(text, str) or not text.strip():
            raise BadInput("Ask a question: the message is empty.")
        if connection is not None:
            thread = self.set_thread_connection(thread_id, connection)
        if model is not None:
            self.set_thread_model(thread_id, model)
            thread = self.get_thread(thread_id)
        model_name = thread["model_name"] or self.settings.default_model
        runner = self.service.runner()  # before storing anything: it may fail to import
        token = CancelToken()
        with self.service._lock:  # one turn at a time per thread: history stays in order
            if thread_id in self.service._cancels:
                raise Conflict("A question is already running in this thread; wait for it, "
                               "cancel it, or ask in another thread.")
            self.service._cancels[thread_id] = token
        try:
            self.add_message(thread_id, "user", text)
        except BaseException:
            self.service._cancels.pop(thread_id, None)
            raise
        ctx_token = _CURRENT_TURN.set(_Turn(self, thread_id))
        payload: dict[str, Any] = {"model": model_name, "connection_id": thread["connection_id"]}
        chunks: list[str] = []
        full: str | None = None
        try:
            async for event in runner.run_turn(thread_id, text,
                                               connection_id=thread["connection_id"],
                                               model_name=model_name, chart=chart,
                                               cancel=token, **options):
                kind = event.get("type")
                if kind == "sql":
                    payload["sql"] = event.get("sql")
                elif kind == "table":
                    payload["table"] = {k: event.get(k) for k in
                                        ("columns", "rows", "row_count", "truncated")}
                elif kind == "chart":
                    payload["chart"] = event.get("spec")
                elif kind == "error":
                    payload["error"] = {"message": event.get("message"),
                                        "reason": event.get("reason")}
                elif kind == "chunk":
                    chunks.append(str(event.get("content") or ""))
                elif kind == "end":
                    full = event.get("full_response")
                yield event
        finally:
            # closed from another context (garbage collection): nothing to restore there
            with contextlib.suppress(ValueError):
                _CURRENT_TURN.reset(ctx_token)
            if self.service._cancels.get(thread_id) is token:
                del self.service._cancels[thread_id]
            content = full if full is not None else "".join(chunks)
            if content or len(payload) > 2:
                self.add_message(thread_id, "assistant", content, payload)

    def cancel(self, thread_id: str) -> bool:
        """Stop the running turn of a thread (its SQL too); False if nothing was running."""
        self.get_thread(thread_id)
        token = self.service._cancels.get(thread_id)
        if token is None:
            return False
        token.cancel()
        return True


__all__ = ["AigisService", "ServiceDeps", "UserScope", "connection_dict", "thread_dict"]
