"""The demo database: deterministic, fast to build, consistent, the same on every engine."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from dbutil import engine_for, load_demo_url

from aigis_jupyter.demo import DEMO_TABLES, build_demo_sqlite, demo_rows, load_demo
from aigis_jupyter.errors import Conflict


def _summary(conn: sa.Connection) -> dict[str, object]:
    out: dict[str, object] = {
        t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar() for t in DEMO_TABLES}
    out["payments"] = (out["payments"],
                       round(float(conn.execute(sa.text(
                           "SELECT sum(amount) FROM payments")).scalar()), 2))
    out["items"] = round(float(conn.execute(sa.text(
        "SELECT sum(quantity * unit_price * (1 - discount)) FROM order_items")).scalar()), 2)
    first, last = conn.execute(sa.text(
        "SELECT min(order_date), max(order_date) FROM orders")).one()
    out["dates"] = (str(first)[:10], str(last)[:10])
    return out


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_demo_sqlite(tmp_path_factory.mktemp("demo") / "demo.sqlite")


def test_rows_are_deterministic() -> None:
    assert demo_rows(7) == demo_rows(7)
    assert demo_rows(7)["orders"] != demo_rows(8)["orders"]


def test_builds_and_replaces_atomically(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "demo.sqlite"
    assert build_demo_sqlite(target) == target.resolve()
    first = target.read_bytes()
    build_demo_sqlite(target)  # rebuilding replaces the file with the same content
    with sqlite3.connect(target) as a:
        assert a.execute("SELECT count(*) FROM orders").fetchone()[0] > 3000
    assert len(target.read_bytes()) == len(first)
    assert [p.name for p in target.parent.iterdir()] == ["demo.sqlite"]  # no temp files


def test_shape_is_realistic(demo_file: Path) -> None:
    con = sqlite3.connect(demo_file)
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert tables == set(DEMO_TABLES)
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []  # no orphans
        counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
        assert counts["regions"] == 5 and counts["categories"] == 6
        assert 3000 <= counts["orders"] <= 6000 and counts["order_items"] > counts["orders"]
        years = dict(con.execute(
            "SELECT strftime('%Y', order_date), count(*) FROM orders GROUP BY 1").fetchall())
        assert sorted(years) == ["2022", "2023", "2024"]
        assert years["2024"] > years["2022"]  # the business grows
        # monthly revenue by region has a story: growth differs by region, December peaks
        growth = dict(con.execute(
            "SELECT r.name, sum(strftime('%Y', o.order_date) = '2024') * 1.0 / "
            "sum(strftime('%Y', o.order_date) = '2022') "
            "FROM orders o JOIN customers c USING (customer_id) JOIN regions r USING "
            "(region_id) GROUP BY r.name").fetchall())
        assert growth["Asia Pacific"] > growth["Europe"]
        by_month = dict(con.execute(
            "SELECT strftime('%m', order_date), count(*) FROM orders GROUP BY 1").fetchall())
        assert by_month["12"] == max(by_month.values())
        statuses = {r[0] for r in con.execute("SELECT DISTINCT status FROM orders")}
        assert {"delivered", "cancelled", "returned"} <= statuses
        assert con.execute("SELECT count(*) FROM payments WHERE amount < 0").fetchone()[0] > 0
        assert con.execute("SELECT count(*) FROM orders WHERE employee_id IS NULL"
                           ).fetchone()[0] > 0
    finally:
        con.close()


@pytest.mark.parametrize("server", ["pg_db", "mysql_db"])
def test_same_data_on_every_engine(request: pytest.FixtureRequest, server: str,
                                   demo_file: Path) -> None:
    url = request.getfixturevalue(server)
    load_demo_url(url)
    lite = engine_for(f"sqlite:///{demo_file}")
    other = engine_for(url)
    try:
        with lite.connect() as a, other.connect() as b:
            assert _summary(a) == _summary(b)
        with pytest.raises(Conflict, match="replace=True"):
            load_demo(other)
        load_demo(other, replace=True)
        with other.connect() as b, lite.connect() as a:
            assert _summary(b) == _summary(a)
        fks = sa.inspect(other).get_foreign_keys("order_items")
        assert {f["referred_table"] for f in fks} == {"orders", "products"}
    finally:
        lite.dispose()
        other.dispose()
