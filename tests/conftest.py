"""Shared fixtures: live PostgreSQL / MariaDB databases, the Chinook files, temp settings.

A missing service skips locally but fails under CI=true: CI must never pass by skipping.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["pytest_jupyter.jupyter_server"]

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("AIGIS_SHARED_DIR", ROOT.parent / "shared"))
CHINOOK_DIR = SHARED / "data" / "chinook"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

# Notebook kernels (nbval) inherit this: they must never touch the user's real store.
os.environ.setdefault("AIGIS_DATA_DIR", tempfile.mkdtemp(prefix="aigis-test-"))

PG_ADMIN_URL = os.environ.get("AIGIS_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
MYSQL_ADMIN_URL = os.environ.get("AIGIS_TEST_MYSQL", "mysql+pymysql://root@127.0.0.1:3306/")


def missing(what: str) -> None:
    """Skip locally, fail in CI: a missing service is a broken machine there."""
    if IN_CI:
        pytest.fail(f"{what} is required in CI but is not available", pytrace=False)
    pytest.skip(f"{what} not available")


def _server_up(url: str) -> bool:
    import sqlalchemy as sa

    try:
        eng = sa.create_engine(url, connect_args={"connect_timeout": 3})
        with eng.connect():
            pass
        eng.dispose()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def pg_server() -> str:
    if not _server_up(PG_ADMIN_URL):
        missing("PostgreSQL at 127.0.0.1:5432")
    return PG_ADMIN_URL


@pytest.fixture(scope="session")
def mysql_server() -> str:
    if not _server_up(MYSQL_ADMIN_URL):
        missing("MariaDB/MySQL at 127.0.0.1:3306")
    return MYSQL_ADMIN_URL


def _make_db(admin_url: str, kind: str) -> tuple[str, str]:
    import sqlalchemy as sa

    name = f"aigis_t_{uuid.uuid4().hex[:10]}"
    eng = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(sa.text(f"CREATE DATABASE {name}"))
    eng.dispose()
    url = sa.engine.make_url(admin_url).set(database=name)
    return name, url.render_as_string(hide_password=False)


def _drop_db(admin_url: str, name: str, kind: str) -> None:
    import sqlalchemy as sa

    eng = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        if kind == "postgres":
            c.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        else:
            c.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
    eng.dispose()


@pytest.fixture
def pg_db(pg_server: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database (URL), dropped afterwards."""
    name, url = _make_db(pg_server, "postgres")
    yield url
    _drop_db(pg_server, name, "postgres")


@pytest.fixture
def mysql_db(mysql_server: str) -> Iterator[str]:
    """A fresh, empty MariaDB database (URL), dropped afterwards."""
    name, url = _make_db(mysql_server, "mysql")
    yield url
    _drop_db(mysql_server, name, "mysql")


@pytest.fixture(scope="session")
def pg_db_session(pg_server: str) -> Iterator[str]:
    name, url = _make_db(pg_server, "postgres")
    yield url
    _drop_db(pg_server, name, "postgres")


@pytest.fixture(scope="session")
def mysql_db_session(mysql_server: str) -> Iterator[str]:
    name, url = _make_db(mysql_server, "mysql")
    yield url
    _drop_db(mysql_server, name, "mysql")


@pytest.fixture
def pets_login(mysql_db: str) -> Iterator[dict[str, Any]]:
    """A MariaDB login with a password of its own (a canary to search for), reading one
    table, `pets`, of two rows."""
    import sqlalchemy as sa

    url = sa.make_url(mysql_db)
    password = f"Canary-{uuid.uuid4().hex}"
    user = f"canary_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text("CREATE TABLE pets (id INT PRIMARY KEY, name VARCHAR(20))"))
        c.execute(sa.text("INSERT INTO pets VALUES (1, 'Rex'), (2, 'Tom')"))
        c.execute(sa.text(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'"))
        c.execute(sa.text(f"GRANT SELECT ON {url.database}.* TO '{user}'@'%'"))
    yield {"db_type": "mysql", "host": "127.0.0.1", "port": url.port or 3306,
           "database": url.database, "username": user, "password": password}
    with admin.connect() as c:
        c.execute(sa.text(f"DROP USER IF EXISTS '{user}'@'%'"))
    admin.dispose()


@pytest.fixture(scope="session")
def chinook_dir() -> Path:
    if not (CHINOOK_DIR / "chinook.sqlite").exists():
        missing(f"the Chinook sample in {CHINOOK_DIR}")
    return CHINOOK_DIR


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Core settings isolated in a temp data dir, with no model keys from the environment."""
    from aigis_jupyter.settings import Settings

    for var in ("AIGIS_DATABASE_URL", "MASTER_ENCRYPTION_KEY", "LM_STUDIO_ENDPOINT",
                "DEEPSEEK_API_KEY", "GOOGLE_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AIGIS_DATA_DIR", str(tmp_path / "data"))
    return Settings(data_dir=tmp_path / "data")


# -- the demo database on each engine, one per test module (module tests may write) ---------

@pytest.fixture(scope="module")
def cache():
    from aigis_jupyter.databases.engines import EngineCache

    c = EngineCache()
    yield c
    c.dispose_all()


@pytest.fixture(scope="module")
def sqlite_demo(tmp_path_factory: pytest.TempPathFactory) -> str:
    from aigis_jupyter.demo import build_demo_sqlite

    return str(build_demo_sqlite(tmp_path_factory.mktemp("demo") / "demo.sqlite"))


@pytest.fixture(scope="module")
def pg_demo(pg_server: str) -> Iterator[str]:
    from dbutil import load_demo_url, scratch_database

    with scratch_database(pg_server) as url:
        load_demo_url(url)
        yield url


@pytest.fixture(scope="module")
def mysql_demo(mysql_server: str) -> Iterator[str]:
    from dbutil import load_demo_url, scratch_database

    with scratch_database(mysql_server) as url:
        load_demo_url(url)
        yield url


@pytest.fixture(params=["sqlite", "postgres", "mysql"])
def demo(request: pytest.FixtureRequest, cache) -> tuple[str, object, object]:
    """(url, spec, engine) of the module's demo database on each engine (read-only use)."""
    from dbutil import spec_for

    url = request.getfixturevalue(f"{'pg' if request.param == 'postgres' else request.param}"
                                  "_demo")
    spec = spec_for(url, id=f"{request.module.__name__}-demo-{request.param}")
    return url, spec, cache.get(spec)


@pytest.fixture(params=["sqlite", "postgres", "mysql"])
def writable_demo_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_demo: str) -> str:
    """A fresh demo database per engine that a test may change (a copy, or a new database)."""
    import shutil

    if request.param == "sqlite":
        url = str(tmp_path / "rw.sqlite")
        shutil.copy(sqlite_demo, url)
        return url
    from dbutil import load_demo_url

    url = request.getfixturevalue("pg_db" if request.param == "postgres" else "mysql_db")
    load_demo_url(url)
    return url


# -- the agent's small shop database, through the real database layer --------------------

@pytest.fixture
def shop(tmp_path: Path) -> Path:
    from test_agent_support import build_shop_sqlite

    return build_shop_sqlite(tmp_path / "shop.sqlite")


@pytest.fixture
def deps(shop: Path):
    from test_agent_support import SqliteDeps

    d = SqliteDeps(shop)
    yield d
    d.close()


@pytest.fixture(scope="module")
def chromium_path() -> str:
    """Debian's Chromium and Playwright, or `missing()` (a failure under CI=true)."""
    from live_server import CHROMIUM

    if not os.access(CHROMIUM, os.X_OK):
        missing(f"Chromium at {CHROMIUM} (Debian: apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing("Playwright for Python (the `dev` extra)")
    return CHROMIUM
