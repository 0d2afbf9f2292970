"""The `aigis` command line, run as a subprocess against a temp data dir."""

from __future__ import annotations

import getpass
import json
import os
import select
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items()
         if k not in ("AIGIS_DATABASE_URL", "MASTER_ENCRYPTION_KEY", "JUPYTERHUB_USER")}
    e["AIGIS_DATA_DIR"] = str(tmp_path / "data")
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    return e


def aigis(env: dict[str, str], *args: str, input: str | None = None,
          ok: bool = True) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([sys.executable, "-m", "aigis_jupyter.cli", *args], env=env,
                       input=input, capture_output=True, text=True, timeout=120, cwd=ROOT)
    if ok:
        assert p.returncode == 0, (p.stdout, p.stderr)
    else:
        assert p.returncode == 1, (p.stdout, p.stderr)
        assert p.stderr.startswith("error: ") and "Traceback" not in p.stderr, p.stderr
    return p


def listed(env: dict[str, str], *extra: str) -> list[dict[str, Any]]:
    return json.loads(aigis(env, *extra, "connections", "list", "--json").stdout)


@pytest.fixture
def maria(mysql_db: str, mysql_server: str) -> Iterator[dict[str, str]]:
    u = sa.engine.make_url(mysql_db)
    user, password = f"aigis_{uuid.uuid4().hex[:8]}", f"Cli-{uuid.uuid4().hex}"
    admin = sa.create_engine(mysql_server, isolation_level="AUTOCOMMIT")
    hosts = ("%", "localhost", "127.0.0.1")
    with admin.connect() as c:
        for h in hosts:
            c.execute(sa.text(f"CREATE USER '{user}'@'{h}' IDENTIFIED BY '{password}'"))
            c.execute(sa.text(f"GRANT SELECT ON `{u.database}`.* TO '{user}'@'{h}'"))
    yield {"host": str(u.host), "port": str(u.port), "database": str(u.database),
           "user": user, "password": password}
    with admin.connect() as c:
        for h in hosts:
            c.execute(sa.text(f"DROP USER IF EXISTS '{user}'@'{h}'"))
    admin.dispose()


def test_help_and_version(env: dict[str, str]) -> None:
    assert "connections" in aigis(env, "--help").stdout
    assert "aigis-jupyter" in aigis(env, "--version").stdout
    p = subprocess.run([sys.executable, "-m", "aigis_jupyter.cli"], env=env,
                       capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 2 and "COMMAND" in p.stderr


def test_health_and_db_upgrade(env: dict[str, str], tmp_path: Path) -> None:
    h = json.loads(aigis(env, "health").stdout)
    assert h["ok"] and h["store"]["at_head"] and h["store"]["journal_mode"] == "wal"
    assert "at revision 0004 (head 0004)" in aigis(env, "db", "upgrade").stdout
    assert (tmp_path / "data" / "aigis.sqlite").exists()
    assert not (tmp_path / "data" / "master.key").exists()  # no secret needed yet


@pytest.mark.postgres
def test_postgres_add_list_test_remove(env: dict[str, str], pg_db: str) -> None:
    u = sa.engine.make_url(pg_db)
    assert "No connections yet" in aigis(env, "connections", "list").stdout
    out = aigis(env, "connections", "add", "pg", "--type", "postgres", "--host", str(u.host),
                "--port", str(u.port), "--database", str(u.database), "--username", "postgres",
                "--no-password", "-o", "sslmode=disable").stdout
    assert "Saved connection 'pg' (postgres) (connection tested)." in out
    table = aigis(env, "connections", "list").stdout
    assert table.splitlines()[0].split()[:3] == ["name", "db_type", "host"]
    assert "pg" in table and str(u.database) in table
    (c,) = listed(env)
    assert c["options"] == {"sslmode": "disable"} and c["has_password"] is False
    assert aigis(env, "connections", "test", "pg").stdout.startswith("OK: 'pg' answered")
    assert "Removed connection 'pg'." in aigis(env, "connections", "remove", "pg").stdout
    assert listed(env) == []


@pytest.mark.mysql
def test_password_from_stdin_never_shown(env: dict[str, str], maria: dict[str, str]) -> None:
    add = ["connections", "add", "m", "--type", "mysql", "--host", maria["host"], "--port",
           maria["port"], "--database", maria["database"], "--username", maria["user"],
           "--password-stdin"]
    bad = aigis(env, *add, input="wrong-password\n", ok=False)
    assert "Authentication failed" in bad.stderr and "wrong-password" not in bad.stderr
    assert listed(env) == []  # nothing saved
    good = aigis(env, *add, input=maria["password"] + "\n")
    tested = aigis(env, "connections", "test", "m")
    (c,) = listed(env)
    assert c["has_password"] is True
    for p in (good, tested):
        assert maria["password"] not in p.stdout + p.stderr
    assert maria["password"] not in json.dumps(c)
    key = Path(env["AIGIS_DATA_DIR"]) / "master.key"
    assert key.exists() and (key.stat().st_mode & 0o777) == 0o600
    assert maria["password"].encode() not in (Path(env["AIGIS_DATA_DIR"]) /
                                              "aigis.sqlite").read_bytes()


@pytest.mark.postgres
def test_password_prompt_does_not_echo(env: dict[str, str], pg_db: str) -> None:
    """On a terminal the password is asked for with echo off (getpass)."""
    import pty

    u = sa.engine.make_url(pg_db)
    secret = "typed-" + uuid.uuid4().hex
    pid, fd = pty.fork()
    if pid == 0:  # child: the CLI on a pseudo-terminal
        os.chdir(ROOT)
        os.execve(sys.executable, [sys.executable, "-m", "aigis_jupyter.cli", "connections",
                                   "add", "pg", "--type", "postgres", "--host", str(u.host),
                                   "--database", str(u.database), "--username", "postgres"],
                  env)
    seen = b""
    sent = False
    deadline = time.time() + 60
    while time.time() < deadline:
        r, _, _ = select.select([fd], [], [], 0.5)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        if not sent and b"Password for postgres@" in seen:
            os.write(fd, secret.encode() + b"\n")
            sent = True
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    text = seen.decode(errors="replace")
    assert sent and os.waitstatus_to_exitcode(status) == 0, text
    assert "Saved connection 'pg'" in text
    assert secret not in text
    assert listed(env)[0]["has_password"] is True


def test_errors_are_one_line_without_traceback(env: dict[str, str], tmp_path: Path) -> None:
    p = aigis(env, "connections", "test", "nope", ok=False)
    assert "You have no connection 'nope'" in p.stderr
    p = aigis(env, "connections", "add", "x", "--type", "oracle", "--host", "h", ok=False)
    assert "Known types: mysql, postgres, sqlite" in p.stderr
    p = aigis(env, "connections", "add", "x", "--type", "postgres", "--host", "127.0.0.1",
              "--port", "1", "--no-password", ok=False)
    assert "127.0.0.1:1" in p.stderr and "check host/port" in p.stderr
    p = aigis(env, "connections", "add", "x", "--type", "sqlite", "--host",
              str(tmp_path / "missing.sqlite"), ok=False)
    assert "missing.sqlite" in p.stderr
    p = aigis(env, "connections", "add", "x", "--type", "postgres", "--host", "h",
              "-o", "novalue", ok=False)
    assert "KEY=VALUE" in p.stderr
    assert listed(env) == []
    # saved without a test, then removed
    aigis(env, "connections", "add", "later", "--type", "postgres", "--host", "h",
          "--no-password", "--no-test")
    assert [c["name"] for c in listed(env)] == ["later"]
    aigis(env, "connections", "remove", "later")
    aigis(env, "connections", "remove", "later", ok=False)


def test_users_are_separate(env: dict[str, str], tmp_path: Path) -> None:
    aigis(env, "--user", "alice", "connections", "add", "a", "--type", "postgres",
          "--host", "h", "--no-test", "--no-password")
    assert [c["name"] for c in listed(env, "--user", "alice")] == ["a"]
    assert listed(env, "--user", "bob") == []
    hub = dict(env, JUPYTERHUB_USER="alice")
    assert [c["name"] for c in listed(hub)] == ["a"]
    aigis(env, "--user", "bob", "connections", "remove", "a", ok=False)


def test_demo_is_idempotent(env: dict[str, str], tmp_path: Path) -> None:
    out = aigis(env, "demo").stdout
    path = tmp_path / "data" / "demo.sqlite"
    assert path.exists() and f"Demo database at {path}, registered" in out
    assert "already registered" in aigis(env, "demo").stdout
    (c,) = listed(env)
    assert (c["name"], c["db_type"], c["host"]) == ("demo", "sqlite", str(path))
    assert aigis(env, "connections", "test", "demo").stdout.startswith("OK")
    other = tmp_path / "elsewhere" / "shop.sqlite"
    other.parent.mkdir()
    assert "now points to it" in aigis(env, "demo", "--path", str(other)).stdout
    (c,) = listed(env)
    assert c["host"] == str(other)


def test_keys_rotate(env: dict[str, str], tmp_path: Path) -> None:
    from aigis_jupyter.service import AigisService
    from aigis_jupyter.settings import Settings

    old = dict(env, MASTER_ENCRYPTION_KEY="old-cli-key")
    aigis(old, "connections", "add", "c0", "--type", "postgres", "--host", "h",
          "--no-test", "--password-stdin", input="secret-0\n")
    seed = AigisService(Settings(data_dir=tmp_path / "data", master_keys=["old-cli-key"]))
    for i in (1, 2):  # in-process: same store, same key, quicker than more subprocesses
        seed.user(getpass.getuser()).create_connection(
            {"name": f"c{i}", "db_type": "mysql", "host": "h", "database": "d",
             "password": f"secret-{i}"})
    seed.close()
    both = dict(env, MASTER_ENCRYPTION_KEY="new-cli-key, old-cli-key")
    out = aigis(both, "keys", "rotate").stdout
    assert out.startswith("Re-sealed 3 password(s) with key ")
    assert aigis(both, "keys", "rotate").stdout.startswith("Re-sealed 0 ")
    svc = AigisService(Settings(data_dir=tmp_path / "data", master_keys=["new-cli-key"]))
    scope = svc.user(getpass.getuser())  # the CLI's user: env has no JUPYTERHUB_USER
    assert sorted(scope.connection_spec(f"c{i}").password for i in range(3)) == [
        "secret-0", "secret-1", "secret-2"]
    svc.close()
    # the old key alone cannot open them: a clear message, exit 1
    p = aigis(old, "keys", "rotate", ok=False)
    assert "MASTER_ENCRYPTION_KEY" in p.stderr and "not configured" in p.stderr
