"""Connections: the dialect registry, the engine cache and clear connection errors."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa
from dbutil import engine_for, spec_for

from aigis_jupyter.databases import engines
from aigis_jupyter.databases.engines import (
    ConnectionSpec,
    Dialect,
    EngineCache,
    get_dialect,
    register_dialect,
    test_connection,
)
from aigis_jupyter.demo import build_demo_sqlite
from aigis_jupyter.errors import BadInput, DatabaseError
from aigis_jupyter.scrub import scrub

SECRET = "Sup3r-Secret-Pa55"


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_demo_sqlite(tmp_path_factory.mktemp("engines") / "demo.sqlite")


def test_registry_aliases_and_unknown_type() -> None:
    assert get_dialect("postgresql").name == "postgres"
    assert get_dialect("MariaDB").name == "mysql"
    assert get_dialect("sqlite3").name == "sqlite"
    with pytest.raises(BadInput, match="Known types: mysql, postgres, sqlite"):
        get_dialect("oracle")


def test_another_engine_is_one_registry_entry() -> None:
    # a wire-compatible server: the PostgreSQL dialect under another name and defaults
    register_dialect(replace(get_dialect("postgres"), name="cockroach", label="CockroachDB",
                             default_port=26257, default_database="defaultdb",
                             aliases=("crdb",)))
    try:
        spec = ConnectionSpec(id="c", db_type="crdb", host="db.example", username="u")
        url = spec.dialect.url(spec)
        assert (url.drivername, url.port, url.database) == ("postgresql+psycopg", 26257,
                                                             "defaultdb")
        assert type(spec.dialect) is type(get_dialect("postgres"))  # runs and reads alike
    finally:
        engines.DIALECTS.pop("cockroach")
        engines._ALIASES.pop("cockroach")
        engines._ALIASES.pop("crdb")


def test_a_dialect_without_a_runner_says_so() -> None:
    from aigis_jupyter.databases.execute import run_query

    register_dialect(Dialect(name="nothing", label="Nothing", drivername="sqlite+pysqlite",
                             sqlglot_dialect="sqlite"))
    try:
        spec = ConnectionSpec(id="n", db_type="nothing")
        with pytest.raises(BadInput, match="No executor for database type 'nothing'"):
            run_query(None, spec, "SELECT 1", max_rows=1, timeout_s=1)  # type: ignore[arg-type]
    finally:
        engines.DIALECTS.pop("nothing")
        engines._ALIASES.pop("nothing")


def test_spec_never_shows_the_password() -> None:
    spec = ConnectionSpec(id="1", db_type="postgres", host="h", port=5432, username="u",
                          password=SECRET)
    assert SECRET not in repr(spec) and SECRET not in str(spec)
    assert "has_password=True" in repr(spec)
    url = spec.dialect.url(spec)
    assert SECRET not in repr(url) and SECRET not in str(url)


def test_spec_from_url() -> None:
    spec = ConnectionSpec.from_url("mysql+pymysql://me:pw@db:3307/shop", id="x")
    assert (spec.db_type, spec.host, spec.port, spec.database, spec.username,
            spec.password) == ("mysql", "db", 3307, "shop", "me", "pw")
    assert ConnectionSpec.from_url("sqlite:////tmp/a.db").host == "/tmp/a.db"


def test_unknown_option_is_bad_input() -> None:
    spec = ConnectionSpec(id="1", db_type="postgres", options={"sslmod": "require"})
    with pytest.raises(BadInput, match="sslmod"):
        EngineCache().get(spec)
    spec = ConnectionSpec(id="1", db_type="mysql", options={"connect_timeout": "soon"})
    with pytest.raises(BadInput, match="connect_timeout"):
        EngineCache().get(spec)


def test_engine_cache_follows_the_version(demo_file: Path) -> None:
    cache = EngineCache()
    v1 = ConnectionSpec(id="a", db_type="sqlite", host=str(demo_file), version="1")
    e1 = cache.get(v1)
    assert cache.get(v1) is e1
    with e1.connect() as c:
        c.exec_driver_sql("SELECT 1")
    assert e1.pool.checkedin() == 1
    e2 = cache.get(ConnectionSpec(id="a", db_type="sqlite", host=str(demo_file), version="2"))
    assert e2 is not e1
    assert e1.pool.checkedin() == 0  # the old pool was disposed
    cache.get(ConnectionSpec(id="b", db_type="sqlite", host=str(demo_file)))
    assert len(cache) == 2
    cache.dispose("a")
    assert "a" not in cache and "b" in cache
    cache.dispose_all()
    assert len(cache) == 0


# --------------------------------------------------------------------------- SQLite


def test_sqlite_connection_ok_and_read_only(demo_file: Path) -> None:
    spec = spec_for(str(demo_file))
    cache = EngineCache()
    info = test_connection(spec, cache)
    assert info["ok"] is True and info["server_version"].startswith("SQLite 3.")
    before = demo_file.read_bytes()
    with cache.get(spec).connect() as c, pytest.raises(sa.exc.DatabaseError):
        c.exec_driver_sql("DELETE FROM payments")
    assert demo_file.read_bytes() == before
    cache.dispose_all()


def test_a_tested_connection_keeps_its_engine_in_the_given_cache(demo_file: Path) -> None:
    cache = EngineCache()  # empty: must still be the cache that is used
    spec = spec_for(str(demo_file), id="kept")
    test_connection(spec, cache)
    assert "kept" in cache
    cache.dispose_all()


@pytest.mark.parametrize("allow_write", [False, True])
def test_missing_sqlite_file_is_clear_and_never_created(tmp_path: Path,
                                                        allow_write: bool) -> None:
    missing = tmp_path / "nope" / "missing.sqlite"
    spec = ConnectionSpec(id="m", db_type="sqlite", host=str(missing), allow_write=allow_write)
    with pytest.raises(DatabaseError, match="SQLite file not found") as info:
        test_connection(spec, EngineCache())
    assert str(missing) in info.value.message
    assert not missing.exists() and not missing.parent.exists()


def test_sqlite_odd_file_names_work(tmp_path: Path, demo_file: Path) -> None:
    odd = tmp_path / "a dir?#%" / "shop #1?.sqlite"
    odd.parent.mkdir()
    odd.write_bytes(demo_file.read_bytes())
    assert test_connection(ConnectionSpec(id="o", db_type="sqlite", host=str(odd)))["ok"]


def test_sqlite_needs_a_path() -> None:
    with pytest.raises(BadInput, match="file path"):
        EngineCache().get(ConnectionSpec(id="x", db_type="sqlite"))


# --------------------------------------------------------------------------- PostgreSQL


@pytest.fixture
def pg_spec(pg_server: str) -> ConnectionSpec:
    return spec_for(pg_server)


def test_postgres_ok(pg_spec: ConnectionSpec) -> None:
    info = test_connection(pg_spec)
    assert info["server_version"].startswith("PostgreSQL 1")
    assert info["latency_ms"] >= 0


def test_postgres_bad_host(pg_spec: ConnectionSpec) -> None:
    bad = ConnectionSpec(id="b", db_type="postgres", host="127.0.0.1", port=1,
                         username="postgres", password=SECRET)
    cache = EngineCache()
    with pytest.raises(DatabaseError) as info:
        test_connection(bad, cache)
    msg = info.value.message
    assert msg.startswith("Could not reach 127.0.0.1:1 — check host/port, is the server running?")
    assert info.value.reason == "unreachable"
    assert SECRET not in msg
    assert "b" not in cache  # a failed test leaves no engine behind


def test_postgres_unknown_host_name() -> None:
    bad = ConnectionSpec(id="b", db_type="postgres", host="no-such-host.invalid",
                         username="postgres")
    with pytest.raises(DatabaseError, match=r"Could not reach no-such-host\.invalid:5432"):
        test_connection(bad)


def test_postgres_unknown_database_and_user(pg_spec: ConnectionSpec) -> None:
    from dataclasses import replace

    with pytest.raises(DatabaseError, match="Database 'no_such_db' does not exist") as info:
        test_connection(replace(pg_spec, database="no_such_db", password=SECRET))
    assert info.value.reason == "unknown_database"
    assert SECRET not in info.value.message
    with pytest.raises(DatabaseError, match="User 'no_such_user' does not exist"):
        test_connection(replace(pg_spec, username="no_such_user"))


# --------------------------------------------------------------------------- MySQL / MariaDB


@pytest.fixture
def mysql_user(mysql_db: str) -> Iterator[tuple[str, str]]:
    """A user with a password (root has none here), granted on the fixture database."""
    name = f"aigis_u_{uuid.uuid4().hex[:8]}"
    eng = engine_for(mysql_db)
    db = eng.url.database
    with eng.begin() as c:
        c.exec_driver_sql(f"CREATE USER '{name}'@'%%' IDENTIFIED BY '{SECRET}'")
        c.exec_driver_sql(f"CREATE USER '{name}'@'localhost' IDENTIFIED BY '{SECRET}'")
        c.exec_driver_sql(f"GRANT SELECT ON {db}.* TO '{name}'@'%%'")
        c.exec_driver_sql(f"GRANT SELECT ON {db}.* TO '{name}'@'localhost'")
    try:
        yield name, mysql_db
    finally:
        with eng.begin() as c:
            c.exec_driver_sql(f"DROP USER IF EXISTS '{name}'@'%%'")
            c.exec_driver_sql(f"DROP USER IF EXISTS '{name}'@'localhost'")
        eng.dispose()


def test_mysql_ok_with_password(mysql_user: tuple[str, str]) -> None:
    name, url = mysql_user
    spec = spec_for(url, username=name, password=SECRET)
    info = test_connection(spec)
    assert "MariaDB" in info["server_version"] or "MySQL" in info["server_version"]


def test_mysql_bad_password(mysql_user: tuple[str, str]) -> None:
    name, url = mysql_user
    spec = spec_for(url, username=name, password="wrong-" + SECRET)
    with pytest.raises(DatabaseError) as info:
        test_connection(spec)
    assert info.value.message == (
        f"Authentication failed for user '{name}' at 127.0.0.1:3306: check the username "
        "and password.")
    assert info.value.reason == "auth_failed"
    assert SECRET not in info.value.message


def test_mysql_driver_never_allows_multi_statements(mysql_server: str) -> None:
    from pymysql.constants import CLIENT

    cache = EngineCache()
    try:
        raw = cache.get(spec_for(mysql_server)).raw_connection()
        try:
            assert not raw.driver_connection.client_flag & CLIENT.MULTI_STATEMENTS
            assert not raw.driver_connection._local_infile
        finally:
            raw.close()
    finally:
        cache.dispose_all()


def test_mysql_unknown_database_and_bad_host(mysql_server: str) -> None:
    spec = spec_for(mysql_server, database="no_such_db")
    with pytest.raises(DatabaseError, match="Database 'no_such_db' does not exist"):
        test_connection(spec)
    bad = ConnectionSpec(id="b", db_type="mysql", host="127.0.0.1", port=1, username="root",
                         password=SECRET)
    with pytest.raises(DatabaseError) as info:
        test_connection(bad)
    assert info.value.message.startswith(
        "Could not reach 127.0.0.1:1 — check host/port, is the server running?")
    assert SECRET not in info.value.message


def test_scrub_removes_passwords_from_driver_text() -> None:
    spec = ConnectionSpec(id="1", db_type="postgres", password=SECRET)
    text = f"failed: postgresql://u:{SECRET}@h/db password={SECRET}"
    out = scrub(text, [spec.password])
    assert SECRET not in out and "***" in out
    assert scrub("mysql://u:pw@h/x", []) == "mysql://u:***@h/x"
    assert "scrub" not in engines.__all__  # one scrubber: aigis_jupyter.scrub
