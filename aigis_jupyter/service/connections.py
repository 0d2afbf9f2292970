"""A user's connections and the SQL run on them: passwords go in sealed, never come out."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import AigisError, BadInput, Conflict, DatabaseError, NotFound, SQLRefused
from ..scrub import scrub
from . import validation
from .base import ScopeBase
from .contract import (
    ConnectionInfo,
    ConnectionTest,
    DemoConnection,
    Grant,
    ReadonlyRole,
    SchemaInfo,
)
from .rows import connection_info, grant_info, iso

if TYPE_CHECKING:
    from ..databases.engines import ConnectionSpec
    from ..databases.runs import CancelToken, QueryResult
    from ..store.models import Connection

PASSWORD_PURPOSE = "connection.password"
AUDIT_SQL_MAX = 20_000


def _scrubbed(exc: AigisError, password: str | None) -> AigisError:
    exc.message = scrub(exc.message, [password])
    exc.args = (exc.message,)
    return exc


class ConnectionOps(ScopeBase):
    def list_connections(self) -> list[ConnectionInfo]:
        with self._session() as s:
            return [connection_info(c, self.user_id) for c in self._repo(s).connections()]

    def get_connection(self, ref: str) -> ConnectionInfo:
        with self._session() as s:
            return connection_info(self._repo(s).connection(ref), self.user_id)

    def _spec(self, row: Connection, password: str | None) -> ConnectionSpec:
        from ..databases.engines import ConnectionSpec

        return ConnectionSpec(id=row.id, db_type=row.db_type, host=row.host, port=row.port,
                              database=row.database, username=row.username, password=password,
                              options=dict(row.options or {}), allow_write=bool(row.allow_write),
                              version=iso(row.updated_at) or "")

    def _open_password(self, row: Connection) -> str | None:
        if not row.password_sealed:
            return None
        return self.service.vault.open(row.password_sealed, owner_id=row.owner_id, row_id=row.id,
                                       purpose=PASSWORD_PURPOSE)

    def _seal(self, password: str, row_id: str) -> str:
        return self.service.vault.seal(password, owner_id=self.user_id, row_id=row_id,
                                       purpose=PASSWORD_PURPOSE)

    def _test_spec(self, spec: ConnectionSpec, *, keep_engine: bool = False) -> ConnectionTest:
        """Connect and run a trivial query; the error never carries the password.

        A spec that is not (yet) saved must not leave an engine behind: `keep_engine`
        only for a stored connection, whose engine the next query reuses.
        """
        from ..databases.engines import test_connection

        try:
            result: ConnectionTest = test_connection(  # type: ignore[assignment]
                spec, self.service.engines)
        except AigisError as exc:
            raise _scrubbed(exc, spec.password) from None
        finally:
            if not keep_engine:
                self.service.engines.dispose(spec.id)
        if result["warnings"] and self.settings.refuse_privileged_logins:
            first = result["warnings"][0]
            raise BadInput(f"{first['message']} This deployment refuses such logins.",
                           reason="privileged_login", action=dict(first["action"]))
        return result

    def connection_spec(self, ref: str) -> ConnectionSpec:
        """The connection with its clear password: for the executor and agent, never output."""
        with self._session() as s:
            row = self._repo(s).connection(ref)
            return self._spec(row, self._open_password(row))

    def test_connection(self, ref: str) -> ConnectionTest:
        """Connect and run a trivial query; DatabaseError says what went wrong."""
        return self._test_spec(self.connection_spec(ref), keep_engine=True)

    def create_connection(self, data: Mapping[str, Any], *,
                          test: bool = False) -> ConnectionInfo:
        """Save a connection; with ``test=True`` it is saved only if it connects."""
        import sqlalchemy as sa

        from ..store.models import Connection, new_id

        if not isinstance(data, Mapping):
            raise BadInput("A connection must be given as an object of fields.")
        v = validation.connection(data)
        now = datetime.now(timezone.utc)
        row = Connection(id=new_id(), owner_id=self.user_id, name=v["name"],
                         db_type=v["db_type"], host=v["host"], port=v["port"],
                         database=v["database"], username=v["username"], options=v["options"],
                         allow_write=v["allow_write"], notes=v["notes"], created_at=now,
                         updated_at=now)
        taken = Conflict(f"You already have a connection named {v['name']!r}; pick another "
                         "name or update that one.")
        with self._session() as s:
            if self._repo(s).connection_by_name(v["name"]) is not None:
                raise taken
        test = test or self.settings.refuse_privileged_logins
        tested = self._test_spec(self._spec(row, v["password"])) if test else None
        if v["password"]:
            row.password_sealed = self._seal(v["password"], row.id)
        try:
            with self._session() as s:
                self._repo(s).add_connection(row)
                out = connection_info(row, self.user_id)
        except sa.exc.IntegrityError:
            raise taken from None
        if tested is not None:
            out["warnings"] = tested["warnings"]
        return out

    def update_connection(self, ref: str, data: Mapping[str, Any], *,
                          test: bool = False) -> ConnectionInfo:
        """Change some fields. ``password``: absent or None keeps it, "" removes it."""
        import sqlalchemy as sa

        if not isinstance(data, Mapping):
            raise BadInput("Connection changes must be given as an object of fields.")
        try:
            with self._session() as s:
                repo = self._repo(s)
                row = repo.connection(ref, own=True)
                merged = {k: getattr(row, k) for k in validation.CONNECTION_FIELDS
                          if k != "password"}
                merged.update({k: v for k, v in data.items() if k != "password"})
                if "password" in data:
                    merged["password"] = data["password"]
                v = validation.connection(merged)
                if v["name"] != row.name and repo.connection_by_name(v["name"]) is not None:
                    raise Conflict(f"You already have a connection named {v['name']!r}.")
                if v["file_based"]:
                    password = None
                elif data.get("password") is None:
                    password = self._open_password(row)
                else:
                    password = v["password"] or None
                for k in ("name", "db_type", "host", "port", "database", "username", "options",
                          "allow_write", "notes"):
                    setattr(row, k, v[k])
                row.updated_at = datetime.now(timezone.utc)
                row.password_sealed = self._seal(password, row.id) if password else None
                tested = None
                if test or self.settings.refuse_privileged_logins:
                    # raises before the commit: the stored row stays as it was
                    tested = self._test_spec(self._spec(row, password))
                s.flush()
                out = connection_info(row, self.user_id)
                if tested is not None:
                    out["warnings"] = tested["warnings"]
        except sa.exc.IntegrityError:
            raise Conflict("You already have a connection with that name.") from None
        self.service.forget_connection(out["id"])
        return out

    def delete_connection(self, ref: str) -> None:
        with self._session() as s:
            repo = self._repo(s)
            row = repo.connection(ref, own=True)
            conn_id = row.id
            repo.delete_connection(row)
        self.service.forget_connection(conn_id)

    def ensure_demo(self, path: str | None = None, name: str = "demo") -> DemoConnection:
        """Build the demo database (idempotent) and register it as connection `name`."""
        from ..demo import build_demo_sqlite

        target = Path(path).expanduser() if path else self.settings.data_dir / "demo.sqlite"
        target = Path(build_demo_sqlite(target)).resolve()
        try:
            existing: ConnectionInfo | None = self.get_connection(name)
        except NotFound:
            existing = None
        wanted = {"db_type": "sqlite", "host": str(target)}
        if existing is None:
            conn, status = self.create_connection({"name": name, **wanted}, test=True), "created"
        elif existing["db_type"] == "sqlite" and existing["host"] == str(target):
            conn, status = existing, "unchanged"
        else:
            conn, status = self.update_connection(name, wanted, test=True), "updated"
        return {**conn, "status": status}  # type: ignore[typeddict-item]

    def schema(self, ref: str, *, refresh: bool = False) -> SchemaInfo:
        """The connection's tables (columns, keys, row counts), from the cached snapshot."""
        from ..databases.schema import describe

        spec = self.connection_spec(ref)
        try:
            return describe(self.service.engines.get(spec), spec,  # type: ignore[return-value]
                            refresh=refresh)
        except AigisError as exc:
            raise _scrubbed(exc, spec.password) from None

    # -- sharing ---------------------------------------------------------------------------
    def _grantee(self, user: str | None, group: str | None) -> tuple[str, str]:
        if bool(user) == bool(group):
            raise BadInput("Name exactly one of 'user' or 'group' to share with.")
        kind, name = ("user", user) if user else ("group", group)
        name = validation.opt_str({kind: name}, kind) or ""
        if not name:
            raise BadInput(f"The {kind} name is empty.")
        return kind, name

    def connection_grants(self, ref: str) -> list[Grant]:
        """Who a connection of yours is shared with."""
        with self._session() as s:
            repo = self._repo(s)
            return [grant_info(g) for g in repo.grants(repo.connection(ref, own=True))]

    def grant_connection(self, ref: str, *, user: str | None = None,
                         group: str | None = None) -> list[Grant]:
        """Share one of your connections with a user or a hub group (administrators): they
        may ask it questions, never see its credentials, and cannot change it."""
        self._require_admin()
        kind, name = self._grantee(user, group)
        with self._session() as s:
            repo = self._repo(s)
            row = repo.connection(ref, own=True)
            repo.grant(row, kind, name)
            return [grant_info(g) for g in repo.grants(row)]

    def revoke_connection(self, ref: str, *, user: str | None = None,
                          group: str | None = None) -> list[Grant]:
        """Stop sharing; it takes effect on the grantee's next question."""
        kind, name = self._grantee(user, group)
        with self._session() as s:
            repo = self._repo(s)
            row = repo.connection(ref, own=True)
            if not repo.revoke(row, kind, name):
                raise NotFound(f"The connection {row.name!r} is not shared with {kind} "
                               f"{name!r}.")
            return [grant_info(g) for g in repo.grants(row)]

    def readonly_role(self, ref: str, *, role: str = "aigis_readonly", apply: bool = False,
                      save_as: str | None = None) -> ReadonlyRole:
        """The SQL that creates a login able only to read this connection's database.

        With `apply`, it runs with the connection's own (administrator) login, under a
        generated password that is sealed into the connection saved as `save_as` and never
        shown; without, the statements carry a placeholder to replace.
        """
        import secrets

        role = validation.opt_str({"role": role}, "role", max_len=63) or ""
        if not role or not role.replace("_", "").isalnum():
            raise BadInput("A role name is letters, digits and underscores, e.g. "
                           "'aigis_readonly'.")
        with self._session() as s:
            self._repo(s).connection(ref, own=True)  # another's shared connection: refused
        spec = self.connection_spec(ref)
        dialect = spec.dialect
        placeholder = "<choose a password>"
        shown = dialect.readonly_role_sql(spec, role, placeholder)
        if not apply:
            return {"role": role, "sql": shown, "applied": False, "connection": None}
        password = secrets.token_urlsafe(24)
        engine = None
        try:  # a fresh engine: pooled sessions of this connection are made read-only
            engine = dialect.create_engine(spec)
            raw = engine.raw_connection()
            try:  # DB-API directly: no parameters, so no driver reads `%` as a placeholder
                cur = raw.cursor()
                for statement in dialect.readonly_role_sql(spec, role, password):
                    cur.execute(statement)
                raw.commit()
            finally:
                raw.close()
        except Exception as exc:
            detail = scrub(dialect.driver_message(exc), [spec.password, password])
            raise DatabaseError(
                f"Could not create the role {role!r} with this connection's login: {detail}. "
                "Run the statements as an administrator, or pick another role name.") from None
        finally:
            if engine is not None:
                engine.dispose()
        saved = None
        if save_as:
            info = self.get_connection(ref)
            saved = self.create_connection(
                {"name": save_as, "db_type": info["db_type"], "host": info["host"],
                 "port": info["port"], "database": info["database"], "username": role,
                 "password": password, "options": info["options"]}, test=True)
        return {"role": role, "sql": shown, "applied": True, "connection": saved}

    # -- SQL ----------------------------------------------------------------------------
    def run_sql(self, ref: str, sql: str, *, max_rows: int | None = None,
                thread_id: str | None = None, cancel: CancelToken | None = None) -> QueryResult:
        """Guard, run and audit one statement on one of your connections."""
        from ..databases.execute import run_query

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
        if self.settings.refuse_privileged_logins:
            self.service.check_login(spec, self._test_spec)
        status, rows, error = "error", None, None
        t0 = time.perf_counter()
        try:
            result = run_query(self.service.engines.get(spec), spec, sql, max_rows=cap,
                               timeout_s=self.settings.statement_timeout_s, cancel=cancel)
            status, rows = "ok", result.row_count
        except SQLRefused as exc:
            status, error = "refused", scrub(exc.message, [spec.password])
            raise
        except AigisError as exc:
            error = scrub(f"{exc.reason}: {exc.message}", [spec.password])
            raise _scrubbed(exc, spec.password) from None
        except Exception as exc:
            error = scrub(f"{exc.__class__.__name__}: {exc}", [spec.password])
            raise DatabaseError(f"The query failed: {error}") from None
        finally:
            with self._session() as s:
                self._repo(s).add_audit(
                    username=self.username, connection_id=spec.id, connection_name=name,
                    db_type=db_type, thread_id=thread_id,
                    sql=scrub(sql, [spec.password])[:AUDIT_SQL_MAX], status=status,
                    row_count=rows, duration_ms=round((time.perf_counter() - t0) * 1000, 3),
                    error=error[:AUDIT_SQL_MAX] if error else None)
        if thread_id is not None:
            self.service.turns.remember(self.user_id, thread_id, result)
        return result
