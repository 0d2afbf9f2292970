"""Schema snapshots: complete and correct against each database's own catalog, cached by
fingerprint and rendered compactly (trimming to a question is tested in test_context)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from dbutil import engine_for, load_chinook, spec_for

from aigis_jupyter.databases import runs
from aigis_jupyter.databases import schema as schema_mod
from aigis_jupyter.databases.catalog import SchemaSnapshot
from aigis_jupyter.databases.engines import EngineCache
from aigis_jupyter.databases.schema import render, snapshot
from aigis_jupyter.demo import DEMO_TABLES


def _url(url_or_path: str) -> str:
    return url_or_path if "://" in url_or_path else f"sqlite:///{url_or_path}"


_TYPE_SYNONYMS = {
    "charactervarying": "varchar", "nvarchar": "varchar", "character": "char",
    "integer": "int", "int4": "int", "timestampwithouttimezone": "timestamp",
    "decimal": "numeric", "bool": "boolean", "doubleprecision": "double",
}


def _norm_type(t: str) -> str:
    base = re.sub(r"\(.*?\)", "", t.lower()).replace(" ", "")
    base = re.sub(r"(unsigned|collate.*|charset.*)$", "", base)
    return _TYPE_SYNONYMS.get(base, base)


def assert_matches_catalog(snap: SchemaSnapshot, url: str) -> None:
    """Compare a snapshot with SQLAlchemy's inspector (table by table reflection)."""
    eng = engine_for(_url(url))
    try:
        insp = sa.inspect(eng)
        tables = {t.name: t for t in snap.tables if t.kind == "table"}
        views = {t.name for t in snap.tables if t.kind == "view"}
        assert set(tables) == set(insp.get_table_names())
        assert views == set(insp.get_view_names())
        for name, t in tables.items():
            cols = insp.get_columns(name)
            assert [c.name for c in t.columns] == [c["name"] for c in cols], name
            for ours, theirs in zip(t.columns, cols, strict=True):
                assert ours.nullable == theirs["nullable"], (name, ours.name)
                assert _norm_type(ours.type) == _norm_type(str(theirs["type"])), (
                    name, ours.name, ours.type, str(theirs["type"]))
            pk = insp.get_pk_constraint(name)["constrained_columns"]
            assert t.primary_key == [c["name"] for c in cols if c["name"] in pk], name
            theirs_fk = {(tuple(f["constrained_columns"]), f["referred_table"],
                          tuple(f["referred_columns"])) for f in insp.get_foreign_keys(name)}
            ours_fk = {(tuple(f.columns), f.ref_table, tuple(f.ref_columns))
                       for f in t.foreign_keys}
            assert ours_fk == theirs_fk, name
    finally:
        eng.dispose()


def test_demo_snapshot_is_complete_and_correct(demo: tuple[str, Any, Any]) -> None:
    url, spec, engine = demo
    snap = snapshot(engine, spec)
    assert sorted(t.name for t in snap.tables) == sorted(DEMO_TABLES)
    assert_matches_catalog(snap, url)
    items = snap.table("ORDER_ITEMS")
    assert items is not None and items.primary_key == ["order_id", "line_no"]
    emp = snap.table("employees")
    assert emp is not None
    assert ("manager_id",) in {tuple(f.columns) for f in emp.foreign_keys}  # self reference


@pytest.fixture(params=["sqlite", "postgres", "mysql"])
def chinook(request: pytest.FixtureRequest, chinook_dir: Path,
            tmp_path: Path) -> Iterator[tuple[str, Any, Any]]:
    if request.param == "sqlite":
        url = str(chinook_dir / "chinook.sqlite")
    else:
        url = request.getfixturevalue("pg_db" if request.param == "postgres" else "mysql_db")
        load_chinook(url, chinook_dir)
    spec = spec_for(url)
    cache = EngineCache()
    yield url, spec, cache.get(spec)
    cache.dispose_all()


def test_chinook_snapshot_is_complete_and_correct(chinook: tuple[str, Any, Any]) -> None:
    url, spec, engine = chinook
    snap = snapshot(engine, spec)
    assert len(snap.tables) == 11
    assert_matches_catalog(snap, url)
    track = snap.table("track")
    assert track is not None and len(track.foreign_keys) == 3
    text = render(snap)
    assert text.count("\n- ") == 11


def test_one_catalog_query_and_a_cached_fingerprint(demo: tuple[str, Any, Any],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    _, spec, engine = demo
    schema_mod.clear_cache(spec.id)
    calls: list[str] = []
    real = runs.catalog_rows

    def counting(*args: Any, **kw: Any) -> Any:
        calls.append(args[2].split()[0])
        return real(*args, **kw)

    monkeypatch.setattr(runs, "catalog_rows", counting)
    first = snapshot(engine, spec)
    assert len(calls) == 2  # fingerprint + the one catalog query
    again = snapshot(engine, spec)
    assert again is first and len(calls) == 3  # only the fingerprint
    assert snapshot(engine, spec, refresh=True) is not first


@pytest.fixture
def writable_demo(writable_demo_url: str) -> Iterator[tuple[str, Any, Any]]:
    url = writable_demo_url
    spec = spec_for(url)
    cache = EngineCache()
    yield url, spec, cache.get(spec)
    cache.dispose_all()


def test_fingerprint_follows_ddl_but_not_data(writable_demo: tuple[str, Any, Any]) -> None:
    url, spec, engine = writable_demo
    admin = engine_for(_url(url))
    try:
        first = snapshot(engine, spec)
        with admin.begin() as c:
            c.execute(sa.text("INSERT INTO regions (region_id, name) VALUES (42, 'Moon')"))
        assert snapshot(engine, spec) is first  # data changes keep the cache
        with admin.begin() as c:
            c.execute(sa.text("ALTER TABLE regions ADD COLUMN code VARCHAR(3)"))
        second = snapshot(engine, spec)
        assert second.fingerprint != first.fingerprint
        regions = second.table("regions")
        assert regions is not None and regions.columns[-1].name == "code"
        with admin.begin() as c:
            c.execute(sa.text("CREATE TABLE shipments (shipment_id INTEGER PRIMARY KEY, "
                              "order_id INTEGER REFERENCES orders(order_id))"))
        third = snapshot(engine, spec)
        assert third.fingerprint != second.fingerprint
        ship = third.table("shipments")
        assert ship is not None and ship.foreign_keys[0].ref_table == "orders"
        with admin.begin() as c:
            c.execute(sa.text("DROP TABLE shipments"))
        assert snapshot(engine, spec).table("shipments") is None
        assert_matches_catalog(snapshot(engine, spec), url)
    finally:
        admin.dispose()


def test_postgres_schemas_comments_and_views(pg_db: str) -> None:
    admin = engine_for(pg_db)
    with admin.begin() as c:
        for stmt in (
            "CREATE SCHEMA sales",
            "CREATE TABLE public.customers (id int PRIMARY KEY, name text NOT NULL)",
            "CREATE TABLE sales.deals (id int PRIMARY KEY, customer_id int "
            "REFERENCES public.customers(id), amount numeric(10,2))",
            "COMMENT ON TABLE sales.deals IS 'Closed deals, one row per contract'",
            "COMMENT ON COLUMN sales.deals.amount IS 'in EUR'",
            "CREATE VIEW public.big_deals AS SELECT * FROM sales.deals WHERE amount > 1000",
        ):
            c.execute(sa.text(stmt))
    admin.dispose()
    cache = EngineCache()
    try:
        spec = spec_for(pg_db)
        snap = snapshot(cache.get(spec), spec)
        assert snap.default_schema == "public"
        deals = snap.table("deals", "sales")
        assert deals is not None and deals.comment == "Closed deals, one row per contract"
        assert deals.columns[2].comment == "in EUR"
        assert deals.foreign_keys[0].ref_schema == "public"
        text = render(snap)
        assert "- sales.deals(id int PK, customer_id int -> public.customers.id" in text
        assert "-- Closed deals" in text
        assert re.search(r"^- big_deals\(.*\) \[view\]$", text, re.M)
        only_sales = spec_for(pg_db, options={"schema": "sales"})
        snap2 = snapshot(cache.get(only_sales), only_sales)
        assert [t.name for t in snap2.tables] == ["deals"]
    finally:
        cache.dispose_all()


def test_render_is_compact_markdown(demo: tuple[str, Any, Any]) -> None:
    _, spec, engine = demo
    text = render(snapshot(engine, spec))
    lines = text.splitlines()
    assert lines[0].startswith(f"### {spec.dialect.name} schema: 8 tables")
    assert len(lines) == 9
    orders = next(line for line in lines if line.startswith("- orders("))
    assert "order_id int PK" in orders
    assert "customer_id int -> customers.customer_id" in orders
    items = next(line for line in lines if line.startswith("- order_items("))
    assert "order_id int PK -> orders.order_id" in items and "line_no int PK" in items


def test_sqlite_views_and_a_broken_view(tmp_path: Path, sqlite_demo: str) -> None:
    path = tmp_path / "views.sqlite"
    shutil.copy(sqlite_demo, path)
    admin = engine_for(f"sqlite:///{path}")
    with admin.begin() as c:
        c.execute(sa.text("CREATE VIEW late_orders AS SELECT order_id, order_date FROM orders "
                          "WHERE shipped_date IS NULL"))
    spec = spec_for(str(path))
    cache = EngineCache()
    try:
        snap = snapshot(cache.get(spec), spec)
        view = snap.table("late_orders")
        assert view is not None and view.kind == "view"
        assert [c.name for c in view.columns] == ["order_id", "order_date"]
        assert "- late_orders(order_id int, order_date date) [view]" in render(snap)
        with admin.begin() as c:
            c.execute(sa.text("CREATE TABLE gone (a int)"))
            c.execute(sa.text("CREATE VIEW broken AS SELECT a FROM gone"))
            c.execute(sa.text("DROP TABLE gone"))
        snap = snapshot(cache.get(spec), spec)
        assert snap.table("orders") is not None and snap.table("broken") is None
    finally:
        cache.dispose_all()
        admin.dispose()
