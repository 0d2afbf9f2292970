"""The store: migrations at head on SQLite, PostgreSQL and MariaDB, WAL, concurrent start."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import sqlalchemy as sa

from aigis_jupyter.errors import NotFound
from aigis_jupyter.settings import Settings
from aigis_jupyter.store import Store, StoreError
from aigis_jupyter.store.db import VERSION_TABLE, alembic_config, head_revision
from aigis_jupyter.store.models import Base, Connection, Message, Thread, User
from aigis_jupyter.store.repo import OwnerRepo, UserRepo

TABLES = {"users", "connections", "threads", "messages", "audit_log", VERSION_TABLE}


def _schema_diff(store: Store) -> list:
    """What Alembic autogenerate would change: empty when the migration matches the models."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with store.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True,
                                                     "version_table": VERSION_TABLE})
        diff = compare_metadata(ctx, Base.metadata)
    return [d for d in diff if not (d[0] == "remove_table" and d[1].name == VERSION_TABLE)]


def _check_at_head(store: Store) -> None:
    h = store.health()
    assert h["ok"] and h["connected"] and h["at_head"], h
    assert h["revision"] == head_revision() == "0004"
    assert set(sa.inspect(store.engine).get_table_names()) >= TABLES
    assert _schema_diff(store) == []


def test_sqlite_default_store_is_at_head(settings: Settings) -> None:
    store = Store(settings.store_url)
    assert Path(settings.data_dir, "aigis.sqlite").exists()
    _check_at_head(store)
    store.dispose()


def test_sqlite_runs_in_wal_with_foreign_keys_and_busy_timeout(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/s.sqlite")
    with store.engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert c.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
    assert store.health()["journal_mode"] == "wal"
    # the mode is persisted in the file: a plain sqlite3 connection sees it too
    import sqlite3

    raw = sqlite3.connect(tmp_path / "s.sqlite")
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    raw.close()
    store.dispose()


def test_reopening_is_cheap_and_idempotent(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path}/s.sqlite"
    Store(url).dispose()
    migrations: list[str] = []
    monkeypatch.setattr(Store, "_upgrade_sqlite", lambda self, rev: migrations.append(rev))
    store = Store(url)
    assert migrations == []  # cheap: a store at head only reads its version
    _check_at_head(store)
    store.dispose()


def test_a_store_at_head_opens_without_alembic(tmp_path: Path) -> None:
    """The head read from the version files is Alembic's own, and a store already there
    opens without importing Alembic (a quarter of a second on every kernel's first use)."""
    from aigis_jupyter.store.db import head_at_a_glance

    assert head_at_a_glance() == head_revision()
    url = f"sqlite:///{tmp_path}/s.sqlite"
    Store(url).dispose()
    code = ("import sys; from aigis_jupyter.store import Store; "
            f"Store({url!r}).dispose(); print('alembic' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"


def test_in_memory_sqlite_is_refused() -> None:
    with pytest.raises(StoreError) as exc:
        Store("sqlite://")
    assert "SQLite file" in exc.value.message


def test_unreachable_store_gives_a_clear_error() -> None:
    with pytest.raises(StoreError) as exc:
        Store("postgresql+psycopg://nobody:s3cret@127.0.0.1:1/none")
    msg = exc.value.message
    assert "AIGIS_DATABASE_URL" in msg and "s3cret" not in msg


def test_health_reports_a_store_behind_head(tmp_path: Path) -> None:
    from alembic import command

    url = f"sqlite:///{tmp_path}/s.sqlite"
    store = Store(url)
    command.downgrade(alembic_config(url), "base")  # env.py's own-engine path
    h = store.health()
    assert h["connected"] and not h["at_head"] and not h["ok"]
    assert h["action"] == {"kind": "upgrade_store"} and "newest migration" in h["error"]
    store.upgrade()
    _check_at_head(store)
    store.dispose()


_RACE = """
import os, sys
from aigis_jupyter.store import Store
print("ready", flush=True)
while not os.path.exists(sys.argv[2]):  # the gate: every process starts together
    pass
store = Store(sys.argv[1])
print(store.current_revision())
"""


def _race(url: str, n: int) -> list[str]:
    with tempfile.TemporaryDirectory() as d:
        gate = Path(d) / "go"
        procs = [subprocess.Popen([sys.executable, "-c", _RACE, url, str(gate)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(n)]
        for p in procs:  # each has imported everything and waits at the gate
            if p.stdout is None or p.stdout.readline().strip() != "ready":
                p.wait(timeout=120)
                pytest.fail(f"a racer died before the start: {p.stderr and p.stderr.read()}")
        gate.touch()
        outs = []
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
            outs.append(out.strip())
    return outs


def test_processes_opening_a_fresh_sqlite_file_at_once(tmp_path: Path) -> None:
    """The kernel and the server both start on a new file: neither may break."""
    url = f"sqlite:///{tmp_path}/race.sqlite"
    assert _race(url, 4) == ["0004"] * 4
    store = Store(url)
    _check_at_head(store)
    store.dispose()


@pytest.mark.postgres
def test_postgres_fresh_database_is_at_head(pg_db: str) -> None:
    store = Store(pg_db)
    _check_at_head(store)
    _exercise_models(store)
    store.dispose()


@pytest.mark.postgres
def test_postgres_concurrent_first_start(pg_db: str) -> None:
    assert _race(pg_db, 3) == ["0004"] * 3


@pytest.mark.mysql
def test_mariadb_fresh_database_is_at_head(mysql_db: str) -> None:
    store = Store(mysql_db)
    _check_at_head(store)
    _exercise_models(store)
    store.dispose()


def _exercise_models(store: Store) -> None:
    """Insert one of everything, read it back, delete with the owner-scoped repo."""
    with store.session() as s:
        u = UserRepo(s).add("alice")
        repo = OwnerRepo(s, u.id)
        c = repo.add_connection(Connection(name="db", db_type="postgres", host="h",
                                           options={"sslmode": "require"}))
        t = repo.add_thread(Thread(title="t", connection_id=c.id))
        repo.add_message(t.id, "assistant", "hi", {"sql": "SELECT 1", "table": {"rows": [[1]]}})
        repo.add_audit(username="alice", connection_id=c.id, sql="SELECT 1", status="ok",
                       row_count=1, duration_ms=1.5)
        uid, cid, tid = u.id, c.id, t.id
    with store.session() as s:
        repo = OwnerRepo(s, uid)
        (m,) = repo.messages(tid)
        assert m.payload == {"sql": "SELECT 1", "table": {"rows": [[1]]}}
        assert repo.connection("db").options == {"sslmode": "require"}
        repo.delete_connection(repo.connection(cid))
        assert repo.thread(tid).connection_id is None
        assert repo.audit()[0].connection_id is None
    with store.session() as s:
        UserRepo(s).delete(UserRepo(s).get(uid))
    with store.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Message)) == 0
        assert s.scalar(sa.select(sa.func.count()).select_from(User)) == 0


def test_sqlite_models_round_trip(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/s.sqlite")
    _exercise_models(store)
    store.dispose()


def test_owner_repo_never_returns_another_owners_rows(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/s.sqlite")
    with store.session() as s:
        a = UserRepo(s).add("a")
        b = UserRepo(s).add("b")
        ra, rb = OwnerRepo(s, a.id), OwnerRepo(s, b.id)
        c = rb.add_connection(Connection(name="shared-name", db_type="sqlite", host="/x"))
        t = rb.add_thread(Thread(title="secret"))
        rb.add_message(t.id, "user", "hello")
        assert ra.connections() == [] and ra.threads() == []
        for call in (lambda: ra.connection(c.id), lambda: ra.connection("shared-name"),
                     lambda: ra.thread(t.id), lambda: ra.messages(t.id),
                     lambda: ra.add_message(t.id, "user", "x"),
                     lambda: ra.delete_connection(c), lambda: ra.delete_thread(t)):
            with pytest.raises(NotFound):
                call()
        assert ra.audit() == []
    store.dispose()


def test_foreign_keys_are_enforced_on_sqlite(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/s.sqlite")
    with pytest.raises(sa.exc.IntegrityError), store.session() as s:
        s.add(Thread(owner_id="no-such-user", title="x"))
    store.dispose()
