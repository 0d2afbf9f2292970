"""The schema a prompt carries: the tables a question needs, within the token budget.

Ranking works on the structured snapshot; synonyms come from the schema itself (names and
comments) and from `Settings.schema_synonyms`, never from one sample database.
"""

from __future__ import annotations

import random
import re
from typing import Any

from aigis_jupyter.agent import context as context_mod
from aigis_jupyter.agent.context import SchemaContext, estimate_tokens, schema_context
from aigis_jupyter.databases.catalog import Column, ForeignKey, SchemaSnapshot, Table
from aigis_jupyter.databases.schema import render, snapshot
from aigis_jupyter.settings import DEFAULT_SYNONYMS, Settings

SYNONYMS = Settings().schema_synonyms


def shown(sc: SchemaContext) -> set[str]:
    return set(re.findall(r"^- (?:\w+\.)?(\w+)\(", sc.text, re.M))


def test_budget_keeps_the_tables_the_question_needs(demo: tuple[str, Any, Any]) -> None:
    _, spec, engine = demo
    snap = snapshot(engine, spec)
    sc = schema_context(snap, "What is the monthly revenue by region?", token_budget=260,
                        synonyms=SYNONYMS)
    assert estimate_tokens(sc.text) <= 260
    assert {"regions", "orders"} <= shown(sc)
    assert "more tables not shown" in sc.text
    assert len(shown(sc)) < 8
    assert [t.name for t in sc.tables] == sorted(shown(sc), key=[t.name for t in
                                                                 snap.tables].index)
    everything = schema_context(snap, "", token_budget=100_000, synonyms=SYNONYMS)
    assert everything.text.count("\n- ") == 8
    assert schema_context(snap, "", token_budget=None).text == render(snap)


def _table(name: str, cols: list[str], *, comment: str | None = None,
           fks: list[ForeignKey] | None = None, schema: str | None = None) -> Table:
    columns = [Column("id", "integer", False, True)]
    columns += [Column(c, "varchar(40)") for c in cols]
    return Table(name, schema, columns, fks or [], comment=comment)


def _shop() -> SchemaSnapshot:
    return SchemaSnapshot("sqlite", [
        _table("customers", ["full_name", "segment"]),
        _table("deals", ["stage", "value"], comment="Closed deals, one row per contract"),
        _table("employees", ["first_name", "hired_on"]),
        _table("products", ["title", "colour"]),
        _table("tracks", ["name", "milliseconds"]),
        _table("warehouses", ["site", "capacity"]),
    ], "fp")


def _first(snap: SchemaSnapshot, question: str, synonyms: Any = None) -> str:
    """The one table a budget that fits one table keeps."""
    sc = schema_context(snap, question, token_budget=50, synonyms=synonyms)
    assert len(sc.tables) == 1, sc.text
    return sc.tables[0].name


def test_synonyms_come_from_the_settings() -> None:
    snap = _shop()
    assert _first(snap, "How many clients are there?", SYNONYMS) == "customers"
    assert _first(snap, "How many clients are there?", {"client": ["customer"]}) == "customers"
    assert _first(snap, "Who are our patrons?", {"Patron": "customer"}) == "customers"
    assert _first(snap, "List the staff", SYNONYMS) == "employees"


def test_no_sample_database_synonyms_are_built_in() -> None:
    assert not {"song", "music", "track", "genre", "album"} & set(DEFAULT_SYNONYMS)
    snap = _shop()
    assert _first(snap, "How many songs are there?", SYNONYMS) != "tracks"
    # one line of configuration teaches it
    assert _first(snap, "How many songs are there?", {"song": ["track"]}) == "tracks"


def test_comments_are_the_schemas_own_synonyms() -> None:
    snap = _shop()
    assert _first(snap, "How many contracts were signed?", {}) == "deals"
    snap.tables[5].columns[2].comment = "Pallet slots available"
    assert _first(snap, "Which site has the most pallet slots?", {}) == "warehouses"


def test_context_keeps_the_structured_tables() -> None:
    orders = _table("orders", ["status"], schema="sales",
                    fks=[ForeignKey(["customer_id"], "customers", ["id"], "public")])
    orders.columns.append(Column("customer_id", "integer"))
    snap = SchemaSnapshot("postgres", [_table("customers", ["segment"], schema="public"),
                                       orders], "fp", default_schema="public")
    sc = schema_context(snap, "orders per segment", token_budget=3_000, synonyms=SYNONYMS)
    assert sc.dialect == "postgres" and [t.name for t in sc.tables] == ["customers", "orders"]
    assert [sc.qualified(t) for t in sc.tables] == ["customers", "sales.orders"]
    assert "- sales.orders(id int PK, status varchar(40), customer_id int -> " \
           "public.customers.id)" in sc.text


def _big_schema(n_tables: int = 2000, n_cols: int = 15) -> SchemaSnapshot:
    words = ["customer", "invoice", "shipment", "product", "warehouse", "supplier",
             "employee", "payment", "contract", "ticket", "campaign", "region", "store",
             "account", "ledger", "budget", "asset", "vendor", "license", "device"]
    tables: list[Table] = []
    for i in range(n_tables):
        name = f"{words[i % len(words)]}_{words[(i // len(words)) % len(words)]}_{i}"
        cols = [Column("id", "integer", False, True)]
        cols += [Column(f"{words[(i + j) % len(words)]}_attr_{j}", "varchar(80)")
                 for j in range(1, n_cols)]
        fks = [ForeignKey(["parent_id"], tables[i // 2].name, ["id"])] if i else []
        tables.append(Table(name, "public", cols, fks))
    return SchemaSnapshot("postgres", tables, "fp", default_schema="public")


def test_scales_to_2000_tables() -> None:
    # how fast is benchmark B7's business; here: the right tables, in budget, indexed once
    snap = _big_schema()
    sc = schema_context(snap, "total payments per warehouse supplier last month",
                        token_budget=3000, synonyms=SYNONYMS)
    assert estimate_tokens(sc.text) <= 3000
    first = sc.text.splitlines()[1]
    assert any(w in first for w in ("payment", "warehouse", "supplier"))
    index = context_mod._index(snap)
    schema_context(snap, "devices by license", token_budget=3000, synonyms=SYNONYMS)
    assert context_mod._index(snap) is index  # the index is reused, not rebuilt


def _words(text: str) -> list[str]:
    return text.split()


DOMAINS = _words("sales billing hr payroll inventory logistics shipping marketing support finance "
                 "accounting procurement legal security fleet retail crm travel insurance "
                 "banking")
ENTITIES = _words("customer order invoice payment product supplier shipment warehouse employee "
                  "department contract account ticket campaign lead asset vehicle driver route "
                  "store booking claim policy patient doctor appointment course student member "
                  "subscription device sensor reading project task budget expense vendor region "
                  "branch loan transaction card review coupon partner meeting document audit "
                  "incident")
GENERIC = ["amount", "quantity", "unit_price", "total", "score", "rating", "category",
           "notes", "email", "country", "city", "start_date", "end_date", "balance"]


def _wide() -> SchemaSnapshot:
    """2,000 `{domain}_{entity}` tables with two foreign keys each, as benchmark B7 builds."""
    rnd = random.Random(7)
    tables: list[Table] = []
    for d in DOMAINS:
        made: list[Table] = []
        for e in ENTITIES[:100]:
            cols = [Column("id", "integer", False, True)]
            cols += [Column(f"{e}_{s}", "varchar(40)") for s in ("name", "code", "status")]
            cols += [Column(c, "numeric(12,2)") for c in rnd.sample(GENERIC, 8)]
            fks = []
            for ref in rnd.sample(made, k=min(2, len(made))):
                cols.append(Column(f"{ref.name.split('_', 1)[1]}_id", "integer"))
                fks.append(ForeignKey([cols[-1].name], ref.name, ["id"]))
            t = Table(f"{d}_{e}", "public", cols, fks)
            made.append(t)
            tables.append(t)
    return SchemaSnapshot("postgres", tables, "fp", default_schema="public")


def test_gold_table_recall_on_a_wide_schema() -> None:
    snap = _wide()
    by_name = {t.name: t for t in snap.tables}
    rnd = random.Random(11)
    questions: list[tuple[str, tuple[str, ...]]] = []
    for t in rnd.sample(snap.tables, 40):
        d, e = t.name.split("_", 1)
        questions.append((f"How many {e}s are there in {d}?", (t.name,)))
        questions.append((f"List the {d} {e}s whose amount is above 100.", (t.name,)))
        if t.foreign_keys:
            ref = t.foreign_keys[0].ref_table
            questions.append((f"Show each {d} {e} with the name of its "
                              f"{ref.split('_', 1)[1]}.", (t.name, ref)))
        if f"{d}_customer" in by_name:
            questions.append((f"How many clients does {d} have?", (f"{d}_customer",)))
    hits = 0
    for question, gold in questions:
        sc = schema_context(snap, question, token_budget=3_000, synonyms=SYNONYMS)
        assert estimate_tokens(sc.text) <= 3_000
        hits += all(g in {t.name for t in sc.tables} for g in gold)
    assert hits / len(questions) >= 0.95, hits / len(questions)
