"""B1 — schema snapshot of a 2,000-table PostgreSQL database, cold and warm.

* cold: `schema.snapshot()` with the cache cleared (fingerprint query + one catalog query +
  building the snapshot), and the same plus the first `context.schema_context()` (the
  tables for a question, within the token budget);
* warm: `snapshot()` again (the fingerprint query decides the cache is still right), and
  warm snapshot + `schema_context()` for a new question (the per-snapshot index is cached);
* baseline: `sqlalchemy.MetaData().reflect()` on the same database (a new MetaData each
  time), and SQLAlchemy's batched inspector (`get_multi_columns` / `_pk_constraint` /
  `_foreign_keys`), whose ratio (`speedup_vs_inspector`) is reported beside
  `reflect()`'s: the batched inspector is what a careful caller would use instead.
"""

from __future__ import annotations

from typing import Any

from .common import Ctx, med, ms, result, timed


def run(ctx: Ctx) -> dict[str, Any]:
    import sqlalchemy as sa

    from aigis_jupyter.agent import context
    from aigis_jupyter.databases import schema
    from aigis_jupyter.databases.engines import EngineCache
    from aigis_jupyter.settings import Settings

    from . import widedb

    db, tables = widedb.shared(ctx)
    spec = db.spec("b1")
    cache = EngineCache()
    engine = cache.get(spec)
    question = f"How many {widedb.plural(tables[-1].entity)} are in {tables[-1].domain}?"
    settings = Settings()
    budget, synonyms = settings.schema_token_budget, settings.schema_synonyms

    def cold() -> Any:
        schema.clear_cache()
        return schema.snapshot(engine, spec)

    def cold_render() -> Any:
        schema.clear_cache()
        return context.schema_context(schema.snapshot(engine, spec), question,
                                      token_budget=budget, synonyms=synonyms)

    def warm() -> Any:
        return schema.snapshot(engine, spec)

    questions = iter(f"{q} {i}" for i, q in enumerate([question] * 1_000))

    def warm_render() -> Any:
        return context.schema_context(schema.snapshot(engine, spec), next(questions),
                                      token_budget=budget, synonyms=synonyms)

    plain = sa.create_engine(db.url)

    def reflect() -> Any:
        md = sa.MetaData()
        md.reflect(bind=plain)
        return md

    def inspector() -> Any:
        insp = sa.inspect(plain)
        return (insp.get_multi_columns(), insp.get_multi_pk_constraint(),
                insp.get_multi_foreign_keys())

    try:
        cold()  # connect, warm the pool and the imports
        reflect_n = ctx.size(3, 1)
        ctx.log(f"B1: snapshot cold/warm vs MetaData().reflect() x{reflect_n}")
        t_cold, snap = timed(cold, ctx.size(7, 3))
        t_cold_render, _ = timed(cold_render, ctx.size(5, 2))
        timed(warm, 3)
        t_warm, _ = timed(warm, ctx.size(50, 10))
        t_warm_render, _ = timed(warm_render, ctx.size(50, 10))
        t_reflect, md = timed(reflect, reflect_n)
        t_insp, _ = timed(inspector, reflect_n)
    finally:
        plain.dispose()
        cache.dispose_all()
        schema.clear_cache()

    n_cols = sum(len(t.columns) for t in snap.tables)
    n_fks = sum(len(t.foreign_keys) for t in snap.tables)
    if len(snap.tables) != len(tables) or len(md.tables) != len(tables):
        raise RuntimeError(f"snapshot saw {len(snap.tables)} tables, reflect "
                           f"{len(md.tables)}; {len(tables)} were created")
    cold_s, warm_s, reflect_s = med(t_cold), med(t_warm), med(t_reflect)
    ratio = reflect_s / cold_s
    measured = {
        "tables": len(snap.tables),
        "columns": n_cols,
        "foreign_keys": n_fks,
        "cold_ms": ms(cold_s),
        "speedup_vs_inspector": round(med(t_insp) / cold_s, 2),
        "cold_with_render_ms": ms(med(t_cold_render)),
        "warm_ms": ms(warm_s),
        "warm_with_render_ms": ms(med(t_warm_render)),
        "full_schema_chars": len(schema.render(snap)),
    }
    baseline = {
        "reflect_ms": ms(reflect_s),
        "inspector_get_multi_ms": ms(med(t_insp)),
    }
    return result(
        "B1", "Schema snapshot, PostgreSQL, 2,000 tables x 15 columns with FKs",
        measured=measured, baseline=baseline, ratio=ratio,
        ratio_means="MetaData().reflect() time / cold snapshot time; beside it, "
                    "speedup_vs_inspector = SQLAlchemy's batched Inspector.get_multi_* "
                    "time / cold snapshot time (the fairer comparator: reflect() also "
                    "builds Table objects)",
        target="cold >= 20x faster than reflect; warm (cached) <= 10 ms",
        met=bool(ratio >= 20 and warm_s <= 0.010),
        headline=["cold_ms", "warm_ms", "reflect_ms", "inspector_get_multi_ms",
                  "speedup_vs_inspector"],
    )
