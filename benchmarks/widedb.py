"""A wide PostgreSQL database for B1 and B7: N tables x 15 columns with foreign keys.

Tables are named `{domain}_{entity}` (40 business domains x 50 entities = 2,000 names),
so generated questions can mention a table's concepts ("How many claims in insurance…").
Each table has an `id` primary key, up to two foreign keys to earlier tables of the same
domain, three columns named after its entity and generic business columns; about 3,900
foreign keys at full size. The DDL is sent as a few large scripts, one transaction each
(one transaction for everything would exceed the server's lock table).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from .common import Ctx, PgDb, pg_database


def _words(text: str) -> list[str]:
    return text.split()


DOMAINS = _words(
    "sales billing hr payroll inventory logistics shipping marketing support finance "
    "accounting procurement manufacturing quality research legal compliance security "
    "facilities fleet retail ecommerce crm analytics events travel insurance claims lending "
    "banking healthcare pharmacy education library hotel restaurant energy telecom media "
    "sports"
)
ENTITIES = _words(
    "customer order invoice payment product supplier shipment warehouse employee department "
    "contract account ticket campaign lead asset vehicle driver route store booking claim "
    "policy patient doctor appointment course student member subscription device sensor "
    "reading project task budget expense vendor region branch loan transaction card review "
    "coupon partner meeting document audit incident"
)
# Generic columns (name, type): each table takes seven of them.
POOL = [
    ("amount", "numeric(12,2)"), ("quantity", "integer"), ("unit_price", "numeric(10,2)"),
    ("total", "numeric(14,2)"), ("score", "double precision"), ("rating", "smallint"),
    ("priority", "smallint"), ("category", "varchar(40)"), ("notes", "text"),
    ("email", "varchar(120)"), ("phone", "varchar(30)"), ("country", "varchar(60)"),
    ("city", "varchar(60)"), ("start_date", "date"), ("end_date", "date"),
    ("is_active", "boolean"), ("level", "smallint"), ("weight_kg", "numeric(8,3)"),
    ("duration_minutes", "integer"), ("currency", "char(3)"), ("discount", "numeric(5,2)"),
    ("tax_rate", "numeric(5,4)"), ("due_date", "date"), ("approved_at", "timestamp"),
    ("channel", "varchar(30)"), ("source", "varchar(30)"), ("external_ref", "varchar(64)"),
    ("balance", "numeric(14,2)"), ("latitude", "double precision"),
    ("longitude", "double precision"),
]


@dataclass
class WideTable:
    name: str
    domain: str
    entity: str
    columns: list[tuple[str, str]]
    fks: list[tuple[str, str]] = field(default_factory=list)  # (column, referenced table)

    def ddl(self) -> str:
        cols = ["id integer PRIMARY KEY"] + [f"{c} {t}" for c, t in self.columns]
        cols += [f"{c} integer REFERENCES {ref}(id)" for c, ref in self.fks]
        return f"CREATE TABLE {self.name} ({', '.join(cols)});"


def plural(word: str) -> str:
    if word.endswith("y") and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    if word.endswith(("s", "x", "ch", "sh")):
        return word + "es"
    return word + "s"


def design(n_tables: int = 2_000, seed: int = 7) -> list[WideTable]:
    """The tables, domain by domain (entities in order, so FKs point to earlier tables)."""
    rnd = random.Random(seed)
    per_domain = max(1, -(-n_tables // len(DOMAINS)))
    entities = ENTITIES[:per_domain] if per_domain <= len(ENTITIES) else ENTITIES
    tables: list[WideTable] = []
    for d in DOMAINS:
        made: list[WideTable] = []
        for e in entities:
            if len(tables) >= n_tables:
                break
            own = [(f"{e}_name", "varchar(100)"), (f"{e}_code", "varchar(20)"),
                   (f"{e}_status", "varchar(20)"), ("created_at", "timestamp")]
            fks: list[tuple[str, str]] = []
            for ref in rnd.sample(made, k=min(2, len(made))):
                fks.append((f"{ref.entity}_id", ref.name))
            pool = rnd.sample(POOL, k=14 - len(own) - len(fks))
            t = WideTable(f"{d}_{e}", d, e, own + pool, fks)
            made.append(t)
            tables.append(t)
    return tables


def create(db: PgDb, tables: list[WideTable], batch: int = 400) -> None:
    """Create the tables in a few big transactions."""
    for i in range(0, len(tables), batch):
        db.execute("\n".join(t.ddl() for t in tables[i:i + batch]))



def settle(db: PgDb) -> None:
    """Vacuum and analyze the catalogs, as autovacuum would have long since done on a real
    database of this size (freshly written catalogs make every reader's plans and scans
    noisy for a while)."""
    import psycopg

    with psycopg.connect(db.libpq, autocommit=True) as c:
        c.execute(b"VACUUM (ANALYZE) pg_catalog.pg_class, pg_catalog.pg_attribute, "
                  b"pg_catalog.pg_constraint, pg_catalog.pg_type, pg_catalog.pg_depend, "
                  b"pg_catalog.pg_description, pg_catalog.pg_namespace")


def shared(ctx: Ctx) -> tuple[PgDb, list[WideTable]]:
    """The run's wide database (built once, shared by B1 and B7, dropped at the end)."""

    def make(c: Ctx) -> tuple[PgDb, list[WideTable]]:
        db = c.stack.enter_context(pg_database("aigis_bench_wide"))
        tables = design(c.size(2_000, 60))
        t0 = time.perf_counter()
        create(db, tables)
        settle(db)
        c.log(f"wide database {db.name}: {len(tables)} tables, "
              f"{sum(len(t.fks) for t in tables)} foreign keys in "
              f"{time.perf_counter() - t0:.1f} s")
        return db, tables

    return ctx.once("wide", make)
