"""Privileged logins: every door warns, an operator can refuse them, and the product makes
the read-only login that should be used instead (a login it creates cannot write, even with
the parser off)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from aigis_jupyter.databases.execute import run_query
from aigis_jupyter.errors import BadInput, DatabaseError, SQLRefused
from aigis_jupyter.service.core import AigisService

pytestmark = [pytest.mark.slow]


@pytest.fixture
def svc(settings: Any) -> Iterator[AigisService]:
    service = AigisService(settings)
    yield service
    service.close()


def _login(url: str, name: str = "admin") -> dict[str, Any]:
    u = sa.engine.make_url(url)
    return {"name": name, "db_type": "postgres" if u.get_backend_name() == "postgresql"
            else "mysql", "host": u.host, "port": u.port, "database": u.database,
            "username": u.username, "password": u.password}


@pytest.fixture
def pg_table(pg_db: str) -> str:
    eng = sa.create_engine(pg_db, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(sa.text("CREATE TABLE pets (id int PRIMARY KEY, name text)"))
        c.execute(sa.text("INSERT INTO pets VALUES (1, 'Rex')"))
    eng.dispose()
    return pg_db


@pytest.fixture
def my_table(mysql_db: str) -> str:
    eng = sa.create_engine(mysql_db, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(sa.text("CREATE TABLE pets (id int PRIMARY KEY, name varchar(20))"))
        c.execute(sa.text("INSERT INTO pets VALUES (1, 'Rex')"))
    eng.dispose()
    return mysql_db


def _drop_pg_role(pg_db: str, role: str) -> None:
    eng = sa.create_engine(pg_db, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(sa.text(f'DROP OWNED BY "{role}"'))
        c.execute(sa.text(f'DROP ROLE IF EXISTS "{role}"'))
    eng.dispose()


def _drop_my_user(server: str, role: str) -> None:
    eng = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(sa.text(f"DROP USER IF EXISTS '{role}'@'%'"))
    eng.dispose()


@pytest.mark.postgres
def test_a_superuser_login_is_warned_about_in_the_core(svc: AigisService, pg_db: str) -> None:
    alice = svc.user("alice")
    made = alice.create_connection(_login(pg_db), test=True)
    assert [w["kind"] for w in made["warnings"]] == ["superuser"]
    assert made["warnings"][0]["action"] == {"kind": "readonly_role"}
    assert "superuser" in made["warnings"][0]["message"]
    tested = alice.test_connection("admin")
    assert [w["kind"] for w in tested["warnings"]] == ["superuser"]
    assert "warnings" not in alice.get_connection("admin")  # stored rows carry no test result


@pytest.mark.mysql
def test_a_mariadb_root_login_is_warned_about(svc: AigisService, mysql_db: str) -> None:
    res = svc.user("alice").create_connection(_login(mysql_db), test=True)
    assert [w["kind"] for w in res["warnings"]] == ["server_admin"]


@pytest.mark.postgres
def test_the_postgres_readonly_role_cannot_write_even_with_the_parser_off(
        svc: AigisService, pg_table: str) -> None:
    alice = svc.user("alice")
    alice.create_connection(_login(pg_table))
    role = f"aigis_ro_{uuid.uuid4().hex[:8]}"
    shown = alice.readonly_role("admin", role=role)
    assert not shown["applied"] and "<choose a password>" in shown["sql"][0]
    assert any("GRANT SELECT ON ALL TABLES" in s for s in shown["sql"])
    try:
        made = alice.readonly_role("admin", role=role, apply=True, save_as="reader")
        assert made["applied"] and made["connection"]["username"] == role
        assert made["connection"]["warnings"] == []  # the new login is not privileged
        assert "<choose a password>" in "".join(made["sql"])  # the real one is never shown
        assert alice.run_sql("reader", "SELECT name FROM pets").df.iloc[0, 0] == "Rex"
        spec = alice.connection_spec("reader")
        writable = spec.__class__(**{**spec.__dict__, "allow_write": True})
        with pytest.raises(SQLRefused) as refused:
            run_query(svc.engines.get(writable), writable, "DELETE FROM pets",
                      max_rows=10, timeout_s=10, guard=False)
        assert "read-only" in refused.value.message
        with pytest.raises((SQLRefused, DatabaseError)):
            run_query(svc.engines.get(writable), writable,
                      "SELECT pg_read_file('/etc/hostname')", max_rows=10, timeout_s=10,
                      guard=False)
    finally:
        svc.engines.dispose_all()
        _drop_pg_role(pg_table, role)
    eng = sa.create_engine(pg_table)
    with eng.connect() as c:
        assert c.execute(sa.text("SELECT count(*) FROM pets")).scalar() == 1
    eng.dispose()


@pytest.mark.mysql
def test_the_mariadb_readonly_user_cannot_write_even_with_the_parser_off(
        svc: AigisService, my_table: str, mysql_server: str) -> None:
    alice = svc.user("alice")
    alice.create_connection(_login(my_table))
    role = f"aigis_ro_{uuid.uuid4().hex[:8]}"
    try:
        made = alice.readonly_role("admin", role=role, apply=True, save_as="reader")
        assert made["connection"]["warnings"] == []
        assert alice.run_sql("reader", "SELECT name FROM pets").df.iloc[0, 0] == "Rex"
        spec = alice.connection_spec("reader")
        writable = spec.__class__(**{**spec.__dict__, "allow_write": True})
        with pytest.raises(DatabaseError) as denied:
            run_query(svc.engines.get(writable), writable, "DELETE FROM pets", max_rows=10,
                      timeout_s=10, guard=False)
        assert denied.value.reason == "permission_denied"
    finally:
        svc.engines.dispose_all()
        _drop_my_user(mysql_server, role)


@pytest.mark.postgres
def test_an_operator_can_refuse_privileged_logins(settings: Any, pg_db: str) -> None:
    lax = AigisService(settings)
    lax.user("alice").create_connection(_login(pg_db, "old"))
    lax.close()
    strict = AigisService(settings.replace(refuse_privileged_logins=True))
    alice = strict.user("alice")
    with pytest.raises(BadInput) as refused:
        alice.create_connection(_login(pg_db, "new"))  # tested even when not asked to
    assert refused.value.reason == "privileged_login"
    assert refused.value.action == {"kind": "readonly_role"}
    assert [c["name"] for c in alice.list_connections()] == ["old"]
    with pytest.raises(BadInput, match="refuses such logins"):
        alice.run_sql("old", "SELECT 1")
    strict.close()


@pytest.mark.postgres
def test_the_warning_in_the_cli_and_the_notebook(settings: Any, pg_db: str) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    from aigis_jupyter.magics import AigisMagics

    u = sa.engine.make_url(pg_db)
    p = subprocess.run([sys.executable, "-m", "aigis_jupyter.cli", "connections", "add", "pg",
                        "--type", "postgres", "--host", str(u.host), "--database",
                        str(u.database), "--username", str(u.username), "--no-password"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "warning:" in p.stderr and "superuser" in p.stderr
    assert "aigis connections readonly-role NAME" in p.stderr
    svc = AigisService(settings)
    shell = InteractiveShell.instance()
    try:
        from test_magics import Recorder

        rec = Recorder(shell=shell)
        shell.display_pub = rec
        shell.register_magics(AigisMagics(shell=shell, scope=svc.user(
            __import__("aigis_jupyter.client.local", fromlist=["x"]).current_username(),
            is_admin=True)))
        shell.run_cell("%aigis connections test pg")
        text = rec.all_text()
        assert "superuser" in text and "%aigis connections readonly-role NAME" in text
        shell.run_cell("%aigis connections readonly-role pg")
        assert "CREATE ROLE" in rec.all_text()
    finally:
        InteractiveShell.clear_instance()
        svc.close()
