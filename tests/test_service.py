"""The user-scoped service against live PostgreSQL, MariaDB and a demo SQLite file.

Covers connection CRUD and testing for the three types, clear errors that leave the store
unchanged, owner isolation on every `UserScope` method, passwords never coming back out,
the audit log, threads and messages, and the chat delegation to the agent runner.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from aigis_jupyter.errors import (
    BadInput,
    Conflict,
    DatabaseError,
    Forbidden,
    NotFound,
    SQLRefused,
)
from aigis_jupyter.service import AigisService, UserScope
from aigis_jupyter.settings import Settings
from aigis_jupyter.store.models import AuditLog, Connection, Message, Thread, VerifiedQuery

CONN_KEYS = {"id", "name", "db_type", "host", "port", "database", "username", "has_password",
             "allow_write", "options", "notes", "shared", "created_at", "updated_at"}


# -- fixtures -------------------------------------------------------------------------

@pytest.fixture
def svc(settings: Settings) -> Iterator[AigisService]:
    service = AigisService(settings)
    yield service
    service.close()


@pytest.fixture
def alice(svc: AigisService) -> UserScope:
    return svc.user("alice")


@pytest.fixture
def bob(svc: AigisService) -> UserScope:
    return svc.user("bob")


@pytest.fixture(scope="session")
def demo_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from aigis_jupyter.demo import build_demo_sqlite

    return Path(build_demo_sqlite(tmp_path_factory.mktemp("demo") / "demo.sqlite"))


def _seed(url: str) -> None:
    eng = sa.create_engine(url)
    with eng.begin() as c:
        c.execute(sa.text("CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(50))"))
        c.execute(sa.text("INSERT INTO items VALUES (1, 'apple'), (2, 'pear'), (3, 'fig')"))
    eng.dispose()


@pytest.fixture
def pg_conn(pg_db: str) -> dict[str, Any]:
    """Connection fields for a fresh PostgreSQL database with an `items` table."""
    _seed(pg_db)
    u = sa.engine.make_url(pg_db)
    return {"name": "pg", "db_type": "postgres", "host": u.host, "port": u.port,
            "database": u.database, "username": u.username}


@pytest.fixture
def mysql_login(mysql_db: str, mysql_server: str) -> Iterator[dict[str, Any]]:
    """A MariaDB user with a password, allowed on a fresh database with an `items` table."""
    _seed(mysql_db)
    u = sa.engine.make_url(mysql_db)
    user = f"aigis_{uuid.uuid4().hex[:8]}"
    password = f"Pw-{uuid.uuid4().hex}"
    admin = sa.create_engine(mysql_server, isolation_level="AUTOCOMMIT")
    hosts = ("%", "localhost", "127.0.0.1")
    with admin.connect() as c:
        for h in hosts:
            c.execute(sa.text(f"CREATE USER '{user}'@'{h}' IDENTIFIED BY '{password}'"))
            c.execute(sa.text(f"GRANT ALL PRIVILEGES ON `{u.database}`.* TO '{user}'@'{h}'"))
    yield {"name": "maria", "db_type": "mysql", "host": u.host, "port": u.port,
           "database": u.database, "username": user, "password": password}
    with admin.connect() as c:
        for h in hosts:
            c.execute(sa.text(f"DROP USER IF EXISTS '{user}'@'{h}'"))
    admin.dispose()


@pytest.fixture
def sqlite_conn(demo_file: Path) -> dict[str, Any]:
    return {"name": "demo", "db_type": "sqlite", "host": str(demo_file)}


@pytest.fixture(params=["postgres", "mysql", "sqlite"])
def conn_fields(request: pytest.FixtureRequest) -> dict[str, Any]:
    name = {"postgres": "pg_conn", "mysql": "mysql_login", "sqlite": "sqlite_conn"}
    return dict(request.getfixturevalue(name[request.param]))


def _dump(obj: Any) -> str:
    return json.dumps(obj, default=str)


def _store_snapshot(svc: AigisService) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every user table: 'the store is unchanged' means this is equal."""
    out = {}
    with svc.store.engine.connect() as c:
        for model in (Connection, Thread, Message, AuditLog, VerifiedQuery):
            t = model.__table__
            out[t.name] = [tuple(r) for r in c.execute(sa.select(t).order_by(*t.primary_key))]
    return out


_QUERY = {"postgres": "SELECT name FROM items ORDER BY id",
          "mysql": "SELECT name FROM items ORDER BY id",
          "sqlite": "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"}


# -- connection CRUD and test, three live types ----------------------------------------

def test_connection_crud_and_test(svc: AigisService, alice: UserScope,
                                  conn_fields: dict[str, Any]) -> None:
    db_type = conn_fields["db_type"]
    password = conn_fields.get("password")
    created = alice.create_connection(conn_fields, test=True)
    assert set(created) == CONN_KEYS | {"warnings"}  # tested on the way in
    assert isinstance(created.pop("warnings"), list)
    assert created["db_type"] == db_type
    assert created["has_password"] is bool(password)
    assert created["allow_write"] is False
    assert alice.list_connections() == [created]
    assert alice.get_connection(created["id"]) == created
    assert alice.get_connection(conn_fields["name"]) == created

    result = alice.test_connection(conn_fields["name"])
    assert result["ok"] is True and result["server_version"]
    assert created["id"] in svc.engines

    res = alice.run_sql(created["id"], _QUERY[db_type])
    assert res.row_count >= 1 and res.columns == ["name"]
    if db_type != "sqlite":
        assert list(res.df["name"]) == ["apple", "pear", "fig"]

    updated = alice.update_connection(created["id"], {"name": "renamed",
                                                      "options": {"connect_timeout": "5"}},
                                      test=True)
    assert updated["name"] == "renamed" and updated["options"] == {"connect_timeout": "5"}
    assert updated["has_password"] is bool(password)
    assert updated["updated_at"] > created["updated_at"]
    assert created["id"] not in svc.engines  # disposed on update
    assert alice.test_connection("renamed")["ok"]
    with pytest.raises(NotFound):
        alice.get_connection(conn_fields["name"])
    spec = alice.connection_spec("renamed")
    assert spec.password == password
    assert password is None or password not in repr(spec)

    alice.delete_connection("renamed")
    assert created["id"] not in svc.engines  # disposed on delete
    assert alice.list_connections() == []
    with pytest.raises(NotFound):
        alice.get_connection(created["id"])

    for obj in (created, updated, result, alice.audit_log()):
        assert password is None or password not in _dump(obj)


def test_password_is_sealed_and_never_returned(svc: AigisService, alice: UserScope,
                                               mysql_login: dict[str, Any]) -> None:
    pw = mysql_login["password"]
    c = alice.create_connection(mysql_login, test=True)
    thread = alice.create_thread("t", connection=c["id"])
    alice.run_sql(c["id"], "SELECT * FROM items", thread_id=thread["id"])
    with pytest.raises(SQLRefused):
        alice.run_sql(c["id"], "DROP TABLE items")
    with pytest.raises(DatabaseError):
        alice.run_sql(c["id"], f"SELECT '{pw}' FROM no_such_table")
    returned = [c, alice.get_connection(c["id"]), alice.list_connections(),
                alice.test_connection(c["id"]), alice.get_thread(thread["id"]),
                alice.list_threads(), alice.get_messages(thread["id"]), svc.health(),
                alice.update_connection(c["id"], {"allow_write": False})]
    assert pw not in _dump(returned)
    with svc.store.engine.connect() as conn:
        sealed = conn.execute(sa.select(Connection.password_sealed)).scalar_one()
        audit = conn.execute(sa.select(AuditLog)).all()
    assert sealed.startswith(f"v1.{svc.vault.key_id}.") and pw not in sealed
    assert len(audit) == 3
    # not even a statement that quotes the password keeps it in the audit log
    assert all(pw not in _dump(tuple(row)) for row in audit)
    assert audit[2].sql == "SELECT '***' FROM no_such_table"


def test_update_keeps_replaces_or_clears_the_password(alice: UserScope,
                                                      mysql_login: dict[str, Any]) -> None:
    c = alice.create_connection(mysql_login, test=True)
    alice.update_connection(c["id"], {"port": mysql_login["port"]}, test=True)  # kept
    assert alice.connection_spec(c["id"]).password == mysql_login["password"]
    alice.update_connection(c["id"], {"password": None})  # None keeps it too
    assert alice.connection_spec(c["id"]).password == mysql_login["password"]
    alice.update_connection(c["id"], {"password": "other"})
    assert alice.connection_spec(c["id"]).password == "other"
    out = alice.update_connection(c["id"], {"password": ""})
    assert out["has_password"] is False and alice.connection_spec(c["id"]).password is None


# -- failures are clear and leave the store unchanged -----------------------------------

def _bad_variants(fields: dict[str, Any]) -> list[tuple[str, dict[str, Any], str]]:
    if fields["db_type"] == "sqlite":
        missing = str(Path(fields["host"]).with_name("missing.sqlite"))
        return [("missing file", {**fields, "host": missing}, "missing.sqlite")]
    return [
        ("closed port", {**fields, "host": "127.0.0.1", "port": 1}, "127.0.0.1:1"),
        ("unknown host", {**fields, "host": "no-such-host.invalid"}, "no-such-host.invalid"),
    ]


def test_bad_target_gives_clear_error_and_store_unchanged(
        svc: AigisService, alice: UserScope, conn_fields: dict[str, Any]) -> None:
    good = alice.create_connection({**conn_fields, "name": "good"}, test=True)
    good.pop("warnings")
    for label, fields, where in _bad_variants(conn_fields):
        before = _store_snapshot(svc)
        with pytest.raises(DatabaseError) as exc:
            alice.create_connection(fields, test=True)
        assert where in exc.value.message, label
        if conn_fields["db_type"] != "sqlite":
            assert "check host/port" in exc.value.message
        assert _store_snapshot(svc) == before, label
        # an update to the same bad target is refused and changes nothing either
        with pytest.raises(DatabaseError):
            alice.update_connection("good", {k: v for k, v in fields.items() if k != "name"},
                                    test=True)
        assert _store_snapshot(svc) == before, label
        assert alice.get_connection("good") == good
        # saved without a test, the failure comes from test_connection and changes nothing
        saved = alice.create_connection({**fields, "name": f"untested {label}"})
        before = _store_snapshot(svc)
        with pytest.raises(DatabaseError) as exc2:
            alice.test_connection(saved["id"])
        assert where in exc2.value.message
        assert _store_snapshot(svc) == before
    assert alice.test_connection("good")["ok"]


@pytest.mark.mysql
def test_bad_password_on_mariadb(svc: AigisService, alice: UserScope,
                                 mysql_login: dict[str, Any]) -> None:
    wrong = "Wrong-" + uuid.uuid4().hex
    before = _store_snapshot(svc)
    with pytest.raises(DatabaseError) as exc:
        alice.create_connection({**mysql_login, "password": wrong}, test=True)
    assert "Authentication failed" in exc.value.message
    assert "check the username and password" in exc.value.message
    assert wrong not in exc.value.message and mysql_login["password"] not in exc.value.message
    assert _store_snapshot(svc) == before
    c = alice.create_connection({**mysql_login, "password": wrong})
    with pytest.raises(DatabaseError) as exc:
        alice.test_connection(c["id"])
    assert exc.value.reason == "auth_failed" and wrong not in exc.value.message
    alice.update_connection(c["id"], {"password": mysql_login["password"]}, test=True)
    assert alice.test_connection(c["id"])["ok"]


@pytest.mark.postgres
def test_unknown_database_on_postgres(svc: AigisService, alice: UserScope,
                                      pg_conn: dict[str, Any]) -> None:
    before = _store_snapshot(svc)
    with pytest.raises(DatabaseError) as exc:
        alice.create_connection({**pg_conn, "database": "no_such_db_here"}, test=True)
    assert "does not exist" in exc.value.message
    assert _store_snapshot(svc) == before


# -- validation ------------------------------------------------------------------------

@pytest.mark.parametrize("fields,needle", [
    ({"name": "x", "db_type": "oracle", "host": "h"}, "Known types: mysql, postgres, sqlite"),
    ({"name": "x", "host": "h", "database": "d"}, "needs a 'db_type'"),
    ({"db_type": "postgres", "host": "h", "database": "d"}, "needs a 'name'"),
    ({"name": "  ", "db_type": "postgres", "host": "h"}, "needs a 'name'"),
    ({"name": "x", "db_type": "postgres", "database": "d"}, "needs a 'host'"),
    ({"name": "x", "db_type": "mysql", "host": "h"}, "needs a 'database'"),
    ({"name": "x", "db_type": "sqlite"}, "file's path"),
    ({"name": "x", "db_type": "postgres", "host": "h", "port": "abc"}, "whole number"),
    ({"name": "x", "db_type": "postgres", "host": "h", "port": 70000}, "between 1 and 65535"),
    ({"name": "x", "db_type": "postgres", "host": "a b"}, "server name or address"),
    ({"name": "x", "db_type": "postgres", "host": "h", "colour": "red"}, "Known fields"),
    ({"name": "x", "db_type": "postgres", "host": "h", "allow_write": "yes"}, "true or false"),
    ({"name": "x", "db_type": "postgres", "host": "h", "options": {"evil": "1"}},
     "Unknown option(s)"),
    ({"name": "x", "db_type": "postgres", "host": "h", "options": ["sslmode"]}, "'options'"),
    ({"name": "x", "db_type": "postgres", "host": "h", "password": 123}, "'password'"),
])
def test_validation_errors_are_clear(svc: AigisService, alice: UserScope,
                                     fields: dict[str, Any], needle: str) -> None:
    before = _store_snapshot(svc)
    with pytest.raises(BadInput) as exc:
        alice.create_connection(fields)
    assert needle in exc.value.message
    assert _store_snapshot(svc) == before


def test_defaults_aliases_and_paths(alice: UserScope, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    pg = alice.create_connection({"name": "p", "db_type": "PostgreSQL", "host": "db.local"})
    assert (pg["db_type"], pg["port"], pg["database"]) == ("postgres", 5432, "postgres")
    my = alice.create_connection({"name": "m", "db_type": "mariadb", "host": "db",
                                  "database": "shop", "port": "3307"})
    assert (my["db_type"], my["port"]) == ("mysql", 3307)
    monkeypatch.chdir(tmp_path)
    lite = alice.create_connection({"name": "s", "db_type": "sqlite", "host": "rel/x.sqlite",
                                    "port": 9, "username": "ignored"})
    assert lite["host"] == str(tmp_path / "rel" / "x.sqlite")
    assert lite["port"] is None and lite["username"] is None and not lite["has_password"]


def test_duplicate_name_is_a_conflict(svc: AigisService, alice: UserScope,
                                      bob: UserScope) -> None:
    fields = {"name": "same", "db_type": "postgres", "host": "h"}
    alice.create_connection(fields)
    before = _store_snapshot(svc)
    with pytest.raises(Conflict) as exc:
        alice.create_connection(fields)
    assert "already have a connection named 'same'" in exc.value.message
    assert _store_snapshot(svc) == before
    other = alice.create_connection({**fields, "name": "other"})
    before = _store_snapshot(svc)
    with pytest.raises(Conflict):
        alice.update_connection(other["id"], {"name": "same"})
    assert _store_snapshot(svc) == before
    bob.create_connection(fields)  # names are per user


# -- SQL and the audit log ----------------------------------------------------------------

def test_run_sql_audits_every_outcome(svc: AigisService, alice: UserScope,
                                      sqlite_conn: dict[str, Any]) -> None:
    c = alice.create_connection(sqlite_conn, test=True)
    t = alice.create_thread("q")
    res = alice.run_sql("demo", _QUERY["sqlite"], thread_id=t["id"])
    assert res.row_count >= 6
    assert alice.last_result(t["id"]) is res.df
    limited = alice.run_sql("demo", _QUERY["sqlite"], max_rows=2)
    assert limited.row_count == 2 and limited.truncated
    with pytest.raises(SQLRefused):
        alice.run_sql("demo", "DELETE FROM sqlite_master")
    with pytest.raises(DatabaseError):
        alice.run_sql("demo", "SELECT * FROM no_such_table")
    with pytest.raises(BadInput):
        alice.run_sql("demo", "   ")
    log = alice.audit_log()
    assert [a["status"] for a in log] == ["error", "refused", "ok", "ok"]
    ok = log[3]
    assert ok["row_count"] == res.row_count and ok["thread_id"] == t["id"]
    assert ok["username"] == "alice" and ok["connection_id"] == c["id"]
    assert ok["connection_name"] == "demo" and ok["db_type"] == "sqlite"
    assert ok["duration_ms"] is not None and ok["duration_ms"] >= 0
    assert log[1]["error"] and log[0]["error"] and "no_such_table" in log[0]["error"]
    assert log[1]["row_count"] is None
    # the audit survives the connection's deletion, with its name
    alice.delete_connection("demo")
    assert alice.audit_log()[0]["connection_name"] == "demo"
    assert alice.audit_log()[0]["connection_id"] is None


def test_audit_log_for_admins(svc: AigisService, alice: UserScope, bob: UserScope,
                              sqlite_conn: dict[str, Any]) -> None:
    alice.create_connection(sqlite_conn)
    bob.create_connection(sqlite_conn)
    alice.run_sql("demo", "SELECT 1")
    bob.run_sql("demo", "SELECT 2")
    assert [a["sql"] for a in alice.audit_log()] == ["SELECT 1"]
    with pytest.raises(Forbidden):
        alice.audit_log(all_users=True)
    admin = svc.user("root", is_admin=True)
    assert {a["username"] for a in admin.audit_log(all_users=True)} == {"alice", "bob"}


# -- threads and messages ---------------------------------------------------------------

def test_threads_and_messages(svc: AigisService, alice: UserScope,
                              sqlite_conn: dict[str, Any]) -> None:
    c = alice.create_connection(sqlite_conn)
    t = alice.create_thread()
    assert t["title"] is None and t["connection_id"] is None and t["model_name"] is None
    m1 = alice.add_message(t["id"], "user", "What   were the\nsales by region?")
    payload = {"sql": "SELECT 1", "table": {"columns": ["a"], "rows": [[1]], "row_count": 1,
                                            "truncated": False}, "chart": {"mark": "bar"}}
    m2 = alice.add_message(t["id"], "assistant", "Here you are.", payload)
    assert alice.get_messages(t["id"]) == [m1, m2]
    assert m2["payload"] == payload
    assert alice.get_thread(t["id"])["title"] == "What were the sales by region?"
    with pytest.raises(BadInput):
        alice.add_message(t["id"], "wizard", "x")
    with pytest.raises(BadInput):
        alice.add_message(t["id"], "user", "x", {"bad": float("nan")})

    t2 = alice.set_thread_connection(t["id"], "demo")
    assert t2["connection_id"] == c["id"] and t2["connection_name"] == "demo"
    assert alice.list_threads()[0]["connection_name"] == "demo"
    assert alice.set_thread_connection(t["id"], None)["connection_id"] is None
    alice.set_thread_connection(t["id"], c["id"])
    alice.delete_connection(c["id"])
    assert alice.get_thread(t["id"])["connection_id"] is None

    other = alice.create_thread("second")
    assert [x["id"] for x in alice.list_threads()] == [other["id"], t["id"]]
    assert alice.rename_thread(other["id"], "renamed")["title"] == "renamed"
    alice.delete_thread(t["id"])
    with pytest.raises(NotFound):
        alice.get_messages(t["id"])
    with svc.store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(Message)).scalar() == 0


def test_thread_models(alice: UserScope, monkeypatch: pytest.MonkeyPatch) -> None:
    t = alice.create_thread("m")
    state = alice.get_thread_model(t["id"])
    assert state["model"] is None and state["models"]
    assert {"name", "provider", "aliases", "available", "reason"} <= set(state["models"][0])
    with pytest.raises(BadInput) as exc:
        alice.set_thread_model(t["id"], "no-such-model")
    assert "Unknown model" in exc.value.message
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-used")
    out = alice.set_thread_model(t["id"], "gpt5")
    assert out["model"] == "gpt-5" and out["available"]["gpt-5"] is True
    assert alice.get_thread(t["id"])["model_name"] == "gpt-5"
    assert alice.set_thread_model(t["id"], None)["model"] is None
    t2 = alice.create_thread("with model", model="gpt-5")
    assert t2["model_name"] == "gpt-5"


# -- users ----------------------------------------------------------------------------

def test_users_and_admin(svc: AigisService, sqlite_conn: dict[str, Any]) -> None:
    alice = svc.user("alice", display_name="Alice")
    assert alice.me()["display_name"] == "Alice" and not alice.is_admin
    assert svc.user("alice").user["id"] == alice.user_id  # get-or-create is stable
    me = alice.update_me(display_name="Alice L.", email="alice@example.org")
    assert (me["display_name"], me["email"]) == ("Alice L.", "alice@example.org")
    with pytest.raises(BadInput):
        alice.update_me(username="mallory")
    with pytest.raises(BadInput):
        alice.update_me(email="not-an-email")
    for call in (alice.list_users, lambda: alice.get_user(alice.user_id),
                 lambda: alice.delete_user(alice.user_id)):
        with pytest.raises(Forbidden):
            call()
    admin = svc.user("root", is_admin=True)
    assert admin.is_admin and svc.user("root").is_admin  # None keeps the flag
    assert {u["username"] for u in admin.list_users()} == {"alice", "root"}
    assert admin.get_user(alice.user_id)["email"] == "alice@example.org"
    with pytest.raises(NotFound):
        admin.get_user(str(uuid.uuid4()))
    with pytest.raises(BadInput):
        admin.delete_user(admin.user_id)
    c = alice.create_connection(sqlite_conn)
    t = alice.create_thread("bye")
    alice.add_message(t["id"], "user", "hi")
    alice.run_sql(c["id"], "SELECT 1")
    admin.delete_user(alice.user_id)
    assert {u["username"] for u in admin.list_users()} == {"root"}
    log = admin.audit_log(all_users=True)
    assert log[0]["username"] == "alice" and log[0]["connection_name"] == "demo"
    with pytest.raises(NotFound):
        alice.me()
    assert svc.user("root", is_admin=False).is_admin is False


def test_health(svc: AigisService) -> None:
    h = svc.health()
    assert h["ok"] and h["store"]["at_head"] and h["vault"]["mode"] == "key_file"


# -- isolation: every UserScope method, on another user's objects ------------------------

def _drain(agen: AsyncIterator[dict[str, Any]]) -> list[dict[str, Any]]:
    async def go() -> list[dict[str, Any]]:
        return [e async for e in agen]

    return asyncio.run(go())


def test_user_a_never_reaches_user_b(svc: AigisService, alice: UserScope, bob: UserScope,
                                     sqlite_conn: dict[str, Any], tmp_path: Path) -> None:
    b_conn = bob.create_connection({**sqlite_conn, "name": "b-private"})
    b_thread = bob.create_thread("b secrets", connection=b_conn["id"])
    bob.add_message(b_thread["id"], "user", "b's question")
    bob.run_sql(b_conn["id"], "SELECT 1", thread_id=b_thread["id"])
    b_example = bob.add_examples(b_conn["id"], [{"question": "b?", "sql": "SELECT 1"}])[0]["id"]
    a_conn = alice.create_connection({**sqlite_conn, "name": "a-own"})
    a_thread = alice.create_thread("a's")
    before = _store_snapshot(svc)
    bc, bt = b_conn["id"], b_thread["id"]

    # every method that takes another user's object, each must say NotFound
    calls: dict[str, list[Callable[[], Any]]] = {
        "get_connection": [lambda: alice.get_connection(bc),
                           lambda: alice.get_connection("b-private")],
        "update_connection": [lambda: alice.update_connection(bc, {"name": "stolen"}),
                              lambda: alice.update_connection("b-private", {})],
        "delete_connection": [lambda: alice.delete_connection(bc)],
        "test_connection": [lambda: alice.test_connection(bc)],
        "connection_spec": [lambda: alice.connection_spec(bc)],
        "run_sql": [lambda: alice.run_sql(bc, "SELECT 1"),
                    lambda: alice.run_sql(a_conn["id"], "SELECT 1", thread_id=bt)],
        "get_thread": [lambda: alice.get_thread(bt)],
        "rename_thread": [lambda: alice.rename_thread(bt, "mine")],
        "delete_thread": [lambda: alice.delete_thread(bt)],
        "get_messages": [lambda: alice.get_messages(bt)],
        "add_message": [lambda: alice.add_message(bt, "user", "hi")],
        "set_thread_connection": [lambda: alice.set_thread_connection(bt, a_conn["id"]),
                                  lambda: alice.set_thread_connection(a_thread["id"], bc),
                                  lambda: alice.set_thread_connection(bt, None)],
        "set_thread_model": [lambda: alice.set_thread_model(bt, "no-such-model"),
                             lambda: alice.set_thread_model(bt, None)],
        "get_thread_model": [lambda: alice.get_thread_model(bt)],
        "thread_state": [lambda: alice.thread_state(bt)],
        "last_result": [lambda: alice.last_result(bt)],
        "result_preview": [lambda: alice.result_preview(bt)],
        "schema": [lambda: alice.schema(bc), lambda: alice.schema("b-private")],
        "readonly_role": [lambda: alice.readonly_role(bc), lambda: alice.readonly_role(bc,
                                                                                    apply=True)],
        "connection_grants": [lambda: alice.connection_grants(bc)],
        "revoke_connection": [lambda: alice.revoke_connection(bc, user="alice")],
        "chat": [lambda: _drain(alice.chat(bt, "hello")),
                 lambda: _drain(alice.chat(a_thread["id"], "hello", connection=bc))],
        "cancel": [lambda: alice.cancel(bt)],
        "create_thread": [lambda: alice.create_thread("x", connection=bc)],
        "list_examples": [lambda: alice.list_examples(bc)],
        "add_examples": [lambda: alice.add_examples(bc, [{"question": "q", "sql": "SELECT 1"}])],
        "update_example": [lambda: alice.update_example(bc, b_example, {"sql": "SELECT 2"}),
                           lambda: alice.update_example(a_conn["id"], b_example, {})],
        "delete_example": [lambda: alice.delete_example(bc, b_example),
                           lambda: alice.delete_example(a_conn["id"], b_example)],
        "verify_turn": [lambda: alice.verify_turn(bt)],
    }
    for name, fns in calls.items():
        for fn in fns:
            with pytest.raises(NotFound):
                fn()
            assert _store_snapshot(svc) == before, f"{name} changed the store"

    # listings and user-level calls show only alice's own rows
    assert [c["name"] for c in alice.list_connections()] == ["a-own"]
    assert [t["id"] for t in alice.list_threads()] == [a_thread["id"]]
    assert alice.audit_log() == []
    assert alice.me()["username"] == "alice"
    # admin-only calls are refused outright (not NotFound: it is the call that is refused)
    admin_only = {"list_users": alice.list_users,
                  "get_user": lambda: alice.get_user(bob.user_id),
                  "delete_user": lambda: alice.delete_user(bob.user_id),
                  "grant_connection": lambda: alice.grant_connection(bc, user="alice")}
    for fn in admin_only.values():
        with pytest.raises(Forbidden):
            fn()
    # calls that act on the caller's own objects only (nothing of B's can be named)
    own_only = {"me", "update_me", "list_connections", "create_connection", "list_threads",
                "audit_log", "create_thread", "list_models", "ensure_demo", "health"}
    bob_before = bob.list_connections()
    alice.ensure_demo(tmp_path / "alice-demo.sqlite", name="b-private-demo")
    assert bob.list_connections() == bob_before
    public = {n for n, m in inspect.getmembers(UserScope, callable) if not n.startswith("_")}
    assert public == set(calls) | set(admin_only) | own_only, (
        "a new UserScope method needs an isolation check here")

    # a same-named connection of alice's resolves to hers, never to bob's
    alice.create_connection({**sqlite_conn, "name": "b-private"})
    assert alice.get_connection("b-private")["id"] != bc
    # bob's rows are intact and still his
    assert bob.get_thread(bt)["connection_id"] == bc
    assert [m["content"] for m in bob.get_messages(bt)] == ["b's question"]
    assert len(bob.audit_log()) == 1


# -- chat delegation (the agent runner itself is tested with the agent) -----------------

class _ScriptedRunner:
    """A stand-in for AgentRunner that calls back into the service like the real one,
    through the deps it is handed with each turn."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.force_connection: str | None = None  # act as a compromised agent would

    async def run_turn(self, thread_id: str, text: str, *, connection_id: str | None,
                       model_name: str | None, chart: bool = True, cancel: Any = None,
                       deps: Any = None, **kw: Any) -> AsyncIterator[dict[str, Any]]:
        self.calls.append({"thread_id": thread_id, "connection_id": connection_id,
                           "model_name": model_name, "chart": chart, "deps": deps, **kw})
        yield {"type": "status", "phase": "schema"}
        connection_id = self.force_connection or connection_id
        snap = await asyncio.to_thread(deps.snapshot, connection_id)
        schema = [t.name for t in snap.tables]
        dialect = await asyncio.to_thread(deps.dialect, connection_id)
        sql = "SELECT COUNT(*) AS n FROM sqlite_master"
        yield {"type": "sql", "sql": sql}
        res = await asyncio.to_thread(deps.run_sql, connection_id, sql, cancel)
        yield {"type": "table", **res.preview()}
        yield {"type": "chunk", "content": f"{dialect}: "}
        yield {"type": "chunk", "content": f"{len(schema) > 0}"}
        yield {"type": "end", "full_response": f"{dialect}: True"}

    def state(self, thread_id: str) -> dict[str, Any]:
        return {"thread_id": thread_id}


def test_chat_delegates_stores_messages_and_scopes_deps(
        svc: AigisService, alice: UserScope, bob: UserScope,
        sqlite_conn: dict[str, Any]) -> None:
    from aigis_jupyter.service.deps import TurnDeps

    runner = _ScriptedRunner()
    svc._runner = runner  # type: ignore[assignment]
    c = alice.create_connection(sqlite_conn)
    t = alice.create_thread("chat")
    events = _drain(alice.chat(t["id"], "how many tables?", connection="demo",
                               sql_only=True))
    assert [e["type"] for e in events] == ["status", "sql", "table", "chunk", "chunk", "end"]
    assert runner.calls[0]["connection_id"] == c["id"] and runner.calls[0]["sql_only"]
    msgs = alice.get_messages(t["id"])
    assert [(m["role"], m["content"]) for m in msgs] == [
        ("user", "how many tables?"), ("assistant", "sqlite: True")]
    assert msgs[1]["payload"]["sql"].startswith("SELECT COUNT(*)")
    assert msgs[1]["payload"]["table"]["row_count"] == 1
    assert alice.audit_log()[0]["thread_id"] == t["id"]
    assert alice.last_result(t["id"]) is not None
    assert alice.thread_state(t["id"]) == {"thread_id": t["id"]}
    assert alice.cancel(t["id"]) is False  # nothing running any more
    # each turn gets deps bound to its own user and thread
    deps = runner.calls[0]["deps"]
    assert isinstance(deps, TurnDeps) and deps.scope.user_id == alice.user_id
    assert deps.thread_id == t["id"]
    # during bob's turn, alice's connection id is not his, whatever the agent asks
    bt = bob.create_thread("b")
    runner.force_connection = c["id"]
    with pytest.raises(NotFound):
        _drain(bob.chat(bt["id"], "sneaky"))
    assert runner.calls[-1]["connection_id"] is None
    assert [a["username"] for a in alice.audit_log()] == ["alice"]
    assert bob.audit_log() == []
    with pytest.raises(BadInput):
        _drain(alice.chat(t["id"], "   "))


def test_cancel_reaches_the_running_turn(svc: AigisService, alice: UserScope) -> None:
    seen: dict[str, Any] = {}

    class Waiting:
        async def run_turn(self, thread_id: str, text: str, *, cancel: Any = None,
                           **kw: Any) -> AsyncIterator[dict[str, Any]]:
            seen["token"] = cancel
            yield {"type": "status", "phase": "sql"}
            for _ in range(200):
                if cancel.cancelled:
                    yield {"type": "error", "message": "Cancelled.", "reason": "cancelled"}
                    break
                await asyncio.sleep(0.01)
            yield {"type": "end", "full_response": ""}

    svc._runner = Waiting()  # type: ignore[assignment]
    t = alice.create_thread("c")

    async def go() -> list[dict[str, Any]]:
        out = []
        async for e in alice.chat(t["id"], "long question"):
            out.append(e)
            if e["type"] == "status":
                assert alice.cancel(t["id"]) is True
        return out

    events = asyncio.run(go())
    assert events[-2]["reason"] == "cancelled" and seen["token"].cancelled
    msgs = alice.get_messages(t["id"])
    assert msgs[-1]["payload"]["error"]["reason"] == "cancelled"


# -- the same service on a shared PostgreSQL store (hub mode) ----------------------------

@pytest.mark.postgres
def test_service_on_a_postgres_store(pg_db: str, tmp_path: Path, demo_file: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url=pg_db, master_keys=["hub key"])
    svc = AigisService(settings)
    assert svc.health()["store"]["backend"] == "postgresql" and svc.health()["ok"]
    alice, bob = svc.user("alice"), svc.user("bob")
    c = alice.create_connection({"name": "demo", "db_type": "sqlite", "host": str(demo_file)},
                                test=True)
    p = alice.create_connection({"name": "p", "db_type": "postgres", "host": "h",
                                 "password": "pg-secret"})
    assert p["has_password"] and "pg-secret" not in _dump(p)
    t = alice.create_thread("pg", connection="demo")
    alice.add_message(t["id"], "assistant", "x", {"table": {"rows": [[1, "a"]]}})
    assert alice.run_sql("demo", "SELECT COUNT(*) AS n FROM customers", thread_id=t["id"]
                         ).row_count == 1
    assert alice.get_messages(t["id"])[0]["payload"] == {"table": {"rows": [[1, "a"]]}}
    assert alice.audit_log()[0]["status"] == "ok"
    assert alice.connection_spec("p").password == "pg-secret"
    assert alice.get_thread(t["id"])["created_at"].endswith("+00:00")
    for fn in (lambda: bob.get_connection(c["id"]), lambda: bob.get_thread(t["id"]),
               lambda: bob.get_messages(t["id"]), lambda: bob.run_sql(c["id"], "SELECT 1")):
        with pytest.raises(NotFound):
            fn()
    with pytest.raises(Conflict):
        alice.create_connection({"name": "demo", "db_type": "sqlite", "host": "/x"})
    svc.close()
    ring = AigisService(Settings(data_dir=tmp_path, database_url=pg_db,
                                 master_keys=["new hub key", "hub key"]))
    assert ring.rotate_keys() == 1
    assert ring.user("alice").connection_spec("p").password == "pg-secret"
    ring.close()
