"""The demo database: a small, deterministic sales company to ask questions about.

Eight related tables (regions, customers, categories, products, employees, orders,
order_items, payments) with three years of orders, 2022-2024. The numbers have a shape
worth asking about: regions grow at different rates (Asia Pacific and Middle East &
Africa fastest), November and December peak, prices rise a little each year, enterprise
customers buy in bulk with discounts, some orders are cancelled or returned (returns
carry a negative refund payment) and web orders have no sales rep.

Everything comes from `random.Random(seed)`, so the same seed gives the same rows on
every engine; one set of SQLAlchemy Core tables serves SQLite, PostgreSQL and MySQL.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import os
import random
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import Conflict

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = [
    "DEMO_SEED",
    "DEMO_TABLES",
    "SAMPLE_QUESTIONS",
    "build_demo_sqlite",
    "demo_metadata",
    "demo_rows",
    "load_demo",
]

DEMO_SEED = 7
DEMO_TABLES = ("regions", "categories", "products", "customers", "employees", "orders",
               "order_items", "payments")
SAMPLE_QUESTIONS = (
    "What is the monthly revenue by region in 2024?",
    "Which product categories grew fastest from 2022 to 2024?",
    "Who are the top 10 customers by total spend?",
    "Which sales reps closed the most revenue last year?",
    "What share of orders were returned or cancelled, by channel?",
    "How does the average discount differ between customer segments?",
)

_REGIONS = [
    # name, weight in 2022, yearly growth, {country: cities}
    ("North America", 0.36, 0.06, {"United States": ["New York", "Chicago", "Austin", "Seattle"],
                                   "Canada": ["Toronto", "Vancouver"], "Mexico": ["Monterrey"]}),
    ("Europe", 0.30, 0.04, {"Germany": ["Berlin", "Munich"], "France": ["Paris", "Lyon"],
                            "United Kingdom": ["London", "Manchester"], "Spain": ["Madrid"],
                            "Netherlands": ["Amsterdam"]}),
    ("Asia Pacific", 0.18, 0.28, {"Japan": ["Tokyo", "Osaka"], "Australia": ["Sydney",
                                  "Melbourne"], "Singapore": ["Singapore"],
                                  "India": ["Bangalore", "Mumbai"]}),
    ("Latin America", 0.10, 0.12, {"Brazil": ["Sao Paulo", "Rio de Janeiro"],
                                   "Argentina": ["Buenos Aires"], "Chile": ["Santiago"],
                                   "Colombia": ["Bogota"]}),
    ("Middle East & Africa", 0.06, 0.40, {"United Arab Emirates": ["Dubai"],
                                          "South Africa": ["Cape Town", "Johannesburg"],
                                          "Kenya": ["Nairobi"], "Egypt": ["Cairo"]}),
]

_CATEGORIES = [
    # name, description, price range, products
    ("Electronics", "Gadgets, audio and computer accessories", (25, 450),
     ["Wireless Earbuds", "Smartwatch", "27in 4K Monitor", "Bluetooth Speaker", "Laptop Stand",
      "USB-C Hub", "Mechanical Keyboard", "HD Webcam", "Noise-Cancelling Headphones",
      "Portable Charger"]),
    ("Home & Kitchen", "Cookware, appliances and home goods", (12, 260),
     ["Chef's Knife", "Cast Iron Skillet", "Espresso Machine", "Blender", "Air Fryer",
      "Linen Sheet Set", "Desk Lamp", "Ceramic Dinnerware Set", "French Press"]),
    ("Sports & Outdoors", "Fitness gear and outdoor equipment", (15, 320),
     ["Yoga Mat", "Adjustable Dumbbells", "Trail Running Shoes", "Camping Tent",
      "Insulated Water Bottle", "Road Bike Helmet", "Hiking Backpack", "Resistance Bands"]),
    ("Books", "Print books across genres", (9, 45),
     ["Data Science Handbook", "Mystery Novel", "World Atlas", "Cookbook: Fast Dinners",
      "History of Trade", "Poetry Anthology", "Startup Field Guide", "Children's Picture Book"]),
    ("Toys & Games", "Board games, puzzles and toys", (10, 120),
     ["Strategy Board Game", "1000-Piece Puzzle", "Building Blocks Set", "Remote Control Car",
      "Card Game Party Pack", "Plush Bear", "Science Kit"]),
    ("Beauty", "Skin care and personal care", (8, 95),
     ["Vitamin C Serum", "Sunscreen SPF 50", "Hair Dryer", "Moisturizer", "Electric Toothbrush",
      "Fragrance Gift Set", "Lip Balm Trio"]),
]

_FIRST = ["Ana", "Ben", "Carla", "David", "Elena", "Farid", "Grace", "Hiro", "Ines", "James",
          "Kofi", "Laura", "Mateo", "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tara",
          "Umar", "Valeria", "Wei", "Ximena", "Yusuf", "Zoe", "Lucas", "Mei", "Noah", "Olga",
          "Pedro", "Sofia", "Ravi", "Hannah", "Kenji", "Amara", "Liam", "Chloe", "Diego", "Ivy"]
_LAST = ["Garcia", "Smith", "Muller", "Tanaka", "Okafor", "Rossi", "Dubois", "Kowalski",
         "Silva", "Nguyen", "Patel", "Johansson", "Haddad", "Kim", "Lopez", "Brown", "Novak",
         "Mensah", "Fischer", "Costa", "Sato", "Ahmed", "Martin", "Walker", "Ibrahim", "Moreau"]
_COMPANY_WORDS = ["Northwind", "Bluepeak", "Cobalt", "Summit", "Harbor", "Redwood", "Atlas",
                  "Lumen", "Vertex", "Orchid", "Granite", "Meridian", "Pioneer", "Silverline"]
_COMPANY_KINDS = ["Labs", "Trading", "Studios", "Logistics", "Partners", "Retail", "Group",
                  "Systems", "Foods", "Health"]
_CHANNELS = ("web", "phone", "partner", "store")
_STATUSES = ("delivered", "cancelled", "returned")
_METHODS = ("card", "paypal", "gift_card", "bank_transfer")
_SEASON = [0.85, 0.8, 0.95, 0.95, 1.0, 0.95, 0.9, 0.95, 1.0, 1.05, 1.3, 1.55]
_START, _END = dt.date(2022, 1, 1), dt.date(2024, 12, 31)


def demo_metadata() -> sa.MetaData:
    """The demo tables as SQLAlchemy Core definitions (one definition for every engine).

    A fresh MetaData each call: DDL helpers such as AddConstraint mark the objects they
    are given, so one load must never change what the next one creates.
    """
    import sqlalchemy as sa

    md = sa.MetaData()
    money = sa.Numeric(12, 2, asdecimal=False)

    def pk(name: str) -> sa.Column[Any]:
        return sa.Column(name, sa.Integer, primary_key=True, autoincrement=False)

    sa.Table("regions", md, pk("region_id"),
             sa.Column("name", sa.String(40), nullable=False, unique=True))
    sa.Table("categories", md, pk("category_id"),
             sa.Column("name", sa.String(40), nullable=False, unique=True),
             sa.Column("description", sa.String(120)))
    sa.Table("products", md, pk("product_id"),
             sa.Column("name", sa.String(80), nullable=False),
             sa.Column("category_id", sa.Integer, sa.ForeignKey("categories.category_id"),
                       nullable=False),
             sa.Column("unit_price", money, nullable=False),
             sa.Column("unit_cost", money, nullable=False),
             sa.Column("launched_on", sa.Date, nullable=False),
             sa.Column("discontinued", sa.Boolean, nullable=False))
    sa.Table("customers", md, pk("customer_id"),
             sa.Column("first_name", sa.String(40), nullable=False),
             sa.Column("last_name", sa.String(40), nullable=False),
             sa.Column("company", sa.String(80)),
             sa.Column("email", sa.String(120), nullable=False, unique=True),
             sa.Column("segment", sa.String(20), nullable=False),
             sa.Column("region_id", sa.Integer, sa.ForeignKey("regions.region_id"),
                       nullable=False),
             sa.Column("country", sa.String(40), nullable=False),
             sa.Column("city", sa.String(40), nullable=False),
             sa.Column("signup_date", sa.Date, nullable=False))
    sa.Table("employees", md, pk("employee_id"),
             sa.Column("first_name", sa.String(40), nullable=False),
             sa.Column("last_name", sa.String(40), nullable=False),
             sa.Column("title", sa.String(40), nullable=False),
             sa.Column("region_id", sa.Integer, sa.ForeignKey("regions.region_id")),
             sa.Column("manager_id", sa.Integer, sa.ForeignKey("employees.employee_id")),
             sa.Column("hire_date", sa.Date, nullable=False),
             sa.Column("email", sa.String(120), nullable=False, unique=True))
    sa.Table("orders", md, pk("order_id"),
             sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.customer_id"),
                       nullable=False, index=True),
             sa.Column("employee_id", sa.Integer, sa.ForeignKey("employees.employee_id")),
             sa.Column("order_date", sa.Date, nullable=False, index=True),
             sa.Column("status", sa.String(12), nullable=False),
             sa.Column("channel", sa.String(12), nullable=False),
             sa.Column("shipped_date", sa.Date))
    sa.Table("order_items", md,
             sa.Column("order_id", sa.Integer, sa.ForeignKey("orders.order_id"),
                       primary_key=True, autoincrement=False),
             sa.Column("line_no", sa.Integer, primary_key=True, autoincrement=False),
             sa.Column("product_id", sa.Integer, sa.ForeignKey("products.product_id"),
                       nullable=False, index=True),
             sa.Column("quantity", sa.Integer, nullable=False),
             sa.Column("unit_price", money, nullable=False),
             sa.Column("discount", sa.Numeric(4, 2, asdecimal=False), nullable=False))
    sa.Table("payments", md, pk("payment_id"),
             sa.Column("order_id", sa.Integer, sa.ForeignKey("orders.order_id"),
                       nullable=False, index=True),
             sa.Column("paid_on", sa.Date, nullable=False),
             sa.Column("amount", money, nullable=False),
             sa.Column("method", sa.String(20), nullable=False))
    return md


def _email(first: str, last: str, n: int, domain: str) -> str:
    return f"{first}.{last}{n}@{domain}".lower().replace(" ", "").replace("'", "")


def demo_rows(seed: int = DEMO_SEED) -> dict[str, list[dict[str, Any]]]:
    """Generate every row of the demo database (deterministic for a seed)."""
    rnd = random.Random(seed)
    out: dict[str, list[dict[str, Any]]] = {t: [] for t in DEMO_TABLES}

    for i, (name, *_rest) in enumerate(_REGIONS, 1):
        out["regions"].append({"region_id": i, "name": name})

    pid = 0
    products: list[tuple[int, float, int]] = []  # id, price, category
    for ci, (cname, desc, (lo, hi), names) in enumerate(_CATEGORIES, 1):
        out["categories"].append({"category_id": ci, "name": cname, "description": desc})
        for pname in names:
            pid += 1
            price = round(rnd.uniform(lo, hi), 0) - 0.01
            launched = _START + dt.timedelta(days=rnd.randint(-700, 700))
            out["products"].append({
                "product_id": pid, "name": pname, "category_id": ci, "unit_price": price,
                "unit_cost": round(price * rnd.uniform(0.35, 0.7), 2),
                "launched_on": launched, "discontinued": rnd.random() < 0.08,
            })
            products.append((pid, price, ci))
    # launch-aware product picking, with a few best sellers
    prod_weights = [rnd.paretovariate(1.6) for _ in products]

    # employees: a VP, one manager per region, three or four reps per region
    emps = out["employees"]
    emps.append({"employee_id": 1, "first_name": "Helena", "last_name": "Marsh",
                 "title": "VP of Sales", "region_id": None, "manager_id": None,
                 "hire_date": dt.date(2015, 3, 2), "email": "helena.marsh@demo-shop.example"})
    reps_by_region: dict[int, list[int]] = {}
    eid = 1
    for ri in range(1, len(_REGIONS) + 1):
        eid += 1
        mgr = eid
        f, la = rnd.choice(_FIRST), rnd.choice(_LAST)
        emps.append({"employee_id": mgr, "first_name": f, "last_name": la,
                     "title": "Regional Sales Manager", "region_id": ri, "manager_id": 1,
                     "hire_date": dt.date(2016 + rnd.randint(0, 4), rnd.randint(1, 12), 1),
                     "email": _email(f, la, mgr, "demo-shop.example")})
        for _ in range(rnd.choice((3, 4))):
            eid += 1
            f, la = rnd.choice(_FIRST), rnd.choice(_LAST)
            emps.append({"employee_id": eid, "first_name": f, "last_name": la,
                         "title": "Sales Representative", "region_id": ri, "manager_id": mgr,
                         "hire_date": dt.date(2017 + rnd.randint(0, 5), rnd.randint(1, 12),
                                              rnd.randint(1, 28)),
                         "email": _email(f, la, eid, "demo-shop.example")})
            reps_by_region.setdefault(ri, []).append(eid)

    # customers, each with a region, a segment and a loyalty weight
    segments = [("Consumer", 0.7), ("Small Business", 0.22), ("Enterprise", 0.08)]
    by_region: dict[int, list[tuple[dt.date, int, float, str]]] = {}
    for cid in range(1, 601):
        ri = rnd.choices(range(1, len(_REGIONS) + 1), [r[1] + 0.05 for r in _REGIONS])[0]
        countries = _REGIONS[ri - 1][3]
        country = rnd.choice(sorted(countries))
        seg = rnd.choices([s for s, _ in segments], [w for _, w in segments])[0]
        f, la = rnd.choice(_FIRST), rnd.choice(_LAST)
        company = (f"{rnd.choice(_COMPANY_WORDS)} {rnd.choice(_COMPANY_KINDS)}"
                   if seg != "Consumer" else None)
        signup = dt.date(2021, 1, 1) + dt.timedelta(days=int(rnd.triangular(0, 1400, 300)))
        out["customers"].append({
            "customer_id": cid, "first_name": f, "last_name": la, "company": company,
            "email": _email(f, la, cid, "example.com"), "segment": seg, "region_id": ri,
            "country": country, "city": rnd.choice(countries[country]), "signup_date": signup,
        })
        by_region.setdefault(ri, []).append((signup, cid, rnd.paretovariate(2.0), seg))
    cum_by_region: dict[int, list[float]] = {}
    for ri, lst in by_region.items():
        lst.sort()
        acc, cum = 0.0, []
        for c in lst:
            acc += c[2]
            cum.append(acc)
        cum_by_region[ri] = cum
    prod_cum = list(itertools.accumulate(prod_weights))
    cw_channel = list(itertools.accumulate([0.55, 0.15, 0.12, 0.18]))
    cw_status = list(itertools.accumulate([0.92, 0.045, 0.035]))
    cw_lines = list(itertools.accumulate([0.38, 0.28, 0.18, 0.1, 0.06]))
    cw_qty = list(itertools.accumulate([0.6, 0.25, 0.1, 0.05]))
    cw_disc = list(itertools.accumulate([0.8, 0.1, 0.07, 0.03]))
    cw_method = list(itertools.accumulate([0.62, 0.22, 0.08, 0.08]))

    oid = pay_id = 0
    day = _START
    while day <= _END:
        years = (day - _START).days / 365.25
        season = _SEASON[day.month - 1] * (1.12 if day.weekday() < 5 else 0.8)
        for ri, (_name, weight, growth, _c) in enumerate(_REGIONS, 1):
            lam = 3.0 * weight * (1 + growth) ** years * season
            n = _poisson(rnd, lam)
            eligible = by_region.get(ri, [])
            k = bisect.bisect_right(eligible, (day, 10**9, 0.0, ""))
            if k == 0:
                continue
            cum = cum_by_region[ri]
            for _ in range(n):
                pick = min(bisect.bisect_left(cum, rnd.random() * cum[k - 1]), k - 1)
                _signup, cid, _w, seg = eligible[pick]
                oid += 1
                channel = rnd.choices(_CHANNELS, cum_weights=cw_channel)[0]
                rep = None if channel == "web" and rnd.random() < 0.8 else rnd.choice(
                    reps_by_region[ri])
                age = (_END - day).days
                if age < 6:
                    status = "processing"
                elif age < 14:
                    status = "shipped"
                else:
                    status = rnd.choices(_STATUSES, cum_weights=cw_status)[0]
                shipped = (None if status in ("processing", "cancelled")
                           else day + dt.timedelta(days=rnd.randint(1, 5)))
                out["orders"].append({"order_id": oid, "customer_id": cid, "employee_id": rep,
                                      "order_date": day, "status": status, "channel": channel,
                                      "shipped_date": shipped})
                total = 0.0
                n_lines = rnd.choices((1, 2, 3, 4, 5), cum_weights=cw_lines)[0]
                picked: set[int] = set()
                for _ in range(n_lines):
                    p_id, price, _cat = rnd.choices(products, cum_weights=prod_cum)[0]
                    if p_id in picked:
                        continue
                    picked.add(p_id)
                    line = len(picked)
                    qty = rnd.choices((1, 2, 3, 4), cum_weights=cw_qty)[0]
                    disc = rnd.choices((0.0, 0.05, 0.1, 0.15), cum_weights=cw_disc)[0]
                    if seg == "Enterprise":
                        qty *= rnd.randint(3, 12)
                        disc = max(disc, rnd.choice([0.1, 0.15, 0.2]))
                    elif seg == "Small Business":
                        qty *= rnd.randint(1, 3)
                    unit = round(price * (1.035 ** int(years)), 2)
                    out["order_items"].append({"order_id": oid, "line_no": line,
                                               "product_id": p_id, "quantity": qty,
                                               "unit_price": unit, "discount": disc})
                    total += qty * unit * (1 - disc)
                if status == "cancelled":
                    continue
                total = round(total, 2)
                method = ("bank_transfer" if seg == "Enterprise" and rnd.random() < 0.7
                          else rnd.choices(_METHODS, cum_weights=cw_method)[0])
                delay = rnd.randint(10, 30) if method == "bank_transfer" else rnd.randint(0, 2)
                parts = [total] if rnd.random() > 0.08 or total < 50 else [
                    round(total / 2, 2), round(total - round(total / 2, 2), 2)]
                for j, amount in enumerate(parts):
                    pay_id += 1
                    out["payments"].append({"payment_id": pay_id, "order_id": oid,
                                            "paid_on": day + dt.timedelta(days=delay + 30 * j),
                                            "amount": amount, "method": method})
                if status == "returned":
                    pay_id += 1
                    out["payments"].append({"payment_id": pay_id, "order_id": oid,
                                            "paid_on": day + dt.timedelta(days=rnd.randint(15, 40)),
                                            "amount": -total, "method": method})
        day += dt.timedelta(days=1)
    return out


def _poisson(rnd: random.Random, lam: float) -> int:
    """Knuth's method: fine for the small daily rates used here."""
    limit, k, p = pow(2.718281828459045, -lam), 0, 1.0
    while True:
        p *= rnd.random()
        if p <= limit:
            return k
        k += 1


def _executemany(conn: sa.Connection, table: sa.Table, data: list[dict[str, Any]]) -> None:
    """The Core INSERT compiled once, run through the driver's executemany.

    Each column's bind processor still runs, so dates and booleans are stored exactly as
    SQLAlchemy would store them on that engine (PyMySQL turns this into multi-row
    INSERTs).
    """
    dialect = conn.dialect
    keys = [c.name for c in table.columns]
    compiled = table.insert().compile(dialect=dialect, column_keys=keys)
    order = list(compiled.positiontup) if compiled.positional else keys
    procs = [table.c[k].type.bind_processor(dialect) for k in order]
    tuples = [tuple(p(r[k]) if p else r[k] for k, p in zip(order, procs, strict=True))
              for r in data]
    params: list[Any] = (tuples if compiled.positional
                         else [dict(zip(order, t, strict=True)) for t in tuples])
    conn.exec_driver_sql(str(compiled), params)


def _copy(conn: sa.Connection, table: sa.Table, data: list[dict[str, Any]]) -> None:
    """PostgreSQL: COPY is several times faster than INSERTs."""
    keys = [c.name for c in table.columns]
    cur = conn.connection.driver_connection.cursor()
    try:
        with cur.copy(f"COPY {table.name} ({', '.join(keys)}) FROM STDIN") as cp:
            for r in data:
                cp.write_row([r[k] for k in keys])
    finally:
        cur.close()


def _create_and_fill(conn: sa.Connection, rows: dict[str, list[dict[str, Any]]]) -> None:
    """Create the tables and load them; foreign keys are checked once, not per row."""
    import sqlalchemy as sa

    md = demo_metadata()
    tables = [md.tables[name] for name in DEMO_TABLES]
    backend = conn.dialect.name
    if backend == "postgresql" and conn.dialect.driver == "psycopg":
        for t in tables:
            conn.execute(sa.schema.CreateTable(t, include_foreign_key_constraints=[]))
        for t in tables:
            _copy(conn, t, rows[t.name])
        for t in tables:
            for fk in t.foreign_key_constraints:
                conn.execute(sa.schema.AddConstraint(fk))
            for ix in t.indexes:
                conn.execute(sa.schema.CreateIndex(ix))
        return
    if backend in ("mysql", "mariadb"):
        conn.exec_driver_sql("SET foreign_key_checks = 0")
    md.create_all(conn)
    for t in tables:
        if rows[t.name]:
            _executemany(conn, t, rows[t.name])
    if backend in ("mysql", "mariadb"):
        conn.exec_driver_sql("SET foreign_key_checks = 1")


def load_demo(engine: sa.Engine, *, replace: bool = False, seed: int = DEMO_SEED) -> None:
    """Create the demo tables in any SQLAlchemy engine (PostgreSQL, MySQL, SQLite) and fill them.

    Existing demo tables are an error unless `replace=True` (which drops only those).
    """
    import sqlalchemy as sa

    md = demo_metadata()
    present = {n.lower() for n in sa.inspect(engine).get_table_names()}
    existing = [t for t in DEMO_TABLES if t in present]
    if existing and not replace:
        raise Conflict(
            f"The database already has demo tables ({', '.join(existing)}); pass replace=True "
            "to rebuild them.")
    rows = demo_rows(seed)
    with engine.begin() as conn:
        if existing:
            md.drop_all(conn)
        _create_and_fill(conn, rows)


def build_demo_sqlite(path: str | os.PathLike[str], *, seed: int = DEMO_SEED) -> Path:
    """Write the demo database to a SQLite file (atomically replacing an old one)."""
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    target = Path(path).expanduser().resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".demo-", suffix=".sqlite", dir=target.parent)
    os.close(fd)
    try:
        engine = sa.create_engine(f"sqlite:///{tmp}", poolclass=NullPool)
        try:
            with engine.begin() as conn:
                _create_and_fill(conn, demo_rows(seed))
        finally:
            engine.dispose()
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
