"""B7 — prompt size per question on the 2,000-table database, and gold-table recall.

Questions are generated with known gold tables (see `widedb`: tables are named
`{domain}_{entity}`), in four kinds that name a table's concepts the way a user would:

* count:   "How many claims are there in insurance?"           gold: insurance_claim
* filter:  "List the retail vendors whose unit price is above 100."      retail_vendor
* join:    "Show each hr contract with the name of its employee."  hr_contract, hr_employee
* synonym: "How many patrons does sales have?"  (patron = customer, workers = employee …)

The product's synonym table (`Settings.schema_synonyms`, whose defaults map "client" to
"customer", "staff" to "employee" …) is switched off (`schema_synonyms={}`), so the
synonym questions measure what the ranker finds by itself, not words written for this
benchmark or for Chinook; their recall is reported per kind.

Each question runs through the product's agent (schema snapshot trimmed to the question
by `agent.context` with the configured token budget, no synonyms, the scripted model
answering with SQL over the gold table, the guarded query, the answer call), and every
call the model receives is recorded. Tokens
are counted as characters / 4 (tiktoken's encodings cannot be downloaded here); the
Gemma tokenizer of the embedded model, when installed, is reported as a cross-check.
A question recalls its gold tables when all of them are in the schema text it was sent.
Baseline: the whole schema rendered the same way (what a prompt without trimming holds).
"""

from __future__ import annotations

import asyncio
import random
import re
from dataclasses import dataclass
from typing import Any

from .common import Ctx, med, pct, result

#: A user's words for two entities, independent of the product's synonym table (which is
#: off here anyway): ordinary English, chosen before looking at what the ranker finds.
SYNONYMS = {"customer": ["clients", "buyers", "patrons", "shoppers"],
            "employee": ["staff", "workers", "personnel"]}
_TABLE_LINE = re.compile(r"^- (?:[\w$]+\.)?([\w$]+)\(", re.M)


@dataclass(frozen=True)
class GoldQuestion:
    kind: str
    question: str
    gold: tuple[str, ...]


def questions(tables: list[Any], n: int, seed: int = 11) -> list[GoldQuestion]:
    from .widedb import plural

    rnd = random.Random(seed)
    numeric = {"amount", "quantity", "unit_price", "total", "score", "rating", "priority",
               "level", "weight_kg", "duration_minutes", "discount", "balance"}
    by_name = {t.name: t for t in tables}
    out: list[GoldQuestion] = []
    kinds = ["count", "filter", "join", "synonym"]
    tries = 0
    while len(out) < n and tries < n * 50:
        tries += 1
        kind = kinds[len(out) % len(kinds)]
        t = rnd.choice(tables)
        d, e = t.domain, t.entity
        if kind == "count":
            q = GoldQuestion(kind, f"How many {plural(e)} are there in {d}?", (t.name,))
        elif kind == "filter":
            cols = [c for c, _ in t.columns if c in numeric]
            if not cols:
                continue
            col = rnd.choice(cols).replace("_", " ")
            q = GoldQuestion(kind, f"List the {d} {plural(e)} whose {col} is above 100.",
                             (t.name,))
        elif kind == "join":
            if not t.fks:
                continue
            _, ref = rnd.choice(t.fks)
            r = by_name[ref]
            q = GoldQuestion(kind, f"Show each {d} {e} with the name of its {r.entity}.",
                             (t.name, ref))
        else:
            if e not in SYNONYMS:
                t = by_name.get(f"{d}_{rnd.choice(sorted(SYNONYMS))}") or t
                d, e = t.domain, t.entity
            if e not in SYNONYMS:
                continue
            word = rnd.choice(SYNONYMS[e])
            q = GoldQuestion(kind, f"How many {word} does {d} have?", (t.name,))
        if q.question not in {x.question for x in out}:
            out.append(q)
    return out


def _gemma_counter() -> Any:
    """Token counter of the embedded model's tokenizer, or None when it is not installed."""
    try:
        import llama_cpp

        from aigis_jupyter.models import default_gguf_path

        llm = llama_cpp.Llama(model_path=str(default_gguf_path()), vocab_only=True,
                              verbose=False)
    except Exception:
        return None
    return lambda text: len(llm.tokenize(text.encode(), add_bos=False))


def run(ctx: Ctx) -> dict[str, Any]:
    from aigis_jupyter.agent.runner import AgentRunner
    from aigis_jupyter.databases.schema import clear_cache, render, snapshot
    from aigis_jupyter.models import ModelRegistry
    from aigis_jupyter.settings import Settings

    from . import widedb
    from .common import BenchDeps
    from .scripted import ScriptedModel, register, text_of

    db, tables = widedb.shared(ctx)
    qs = questions(tables, ctx.size(100, 8))
    plans = {q.question: q for q in qs}
    settings = Settings(schema_synonyms={})  # no product (or Chinook) synonyms
    budget = settings.schema_token_budget
    deps = BenchDeps(db.spec("b7"))

    def respond(messages: list[Any]) -> str:
        text = "\n".join(text_of(m.content) for m in messages)
        q = next((p for k, p in plans.items() if k in text), None)
        if q is None:
            raise RuntimeError("unknown question")
        if "Schema:" in text_of(messages[0].content):
            return f"SELECT COUNT(*) AS n FROM {q.gold[0]}"
        return "The answer is 0."

    model = ScriptedModel(responder=respond)
    registry = ModelRegistry(settings, environ={})
    register(registry, model)
    runner = AgentRunner(registry=registry, checkpointer_url_or_saver=None, deps=deps,
                         settings=settings)

    async def ask(q: GoldQuestion) -> list[dict[str, Any]]:
        return [e async for e in runner.run_turn(f"b7-{abs(hash(q.question))}", q.question,
                                                 connection_id="b7", model_name="scripted",
                                                 chart=False)]

    ctx.log(f"B7: {len(qs)} questions on {len(tables)} tables, schema budget {budget}")
    count_gemma = _gemma_counter()
    per: list[dict[str, Any]] = []
    try:
        for q in qs:
            start = len(model.calls)
            events = asyncio.run(ask(q))
            if any(e["type"] == "error" for e in events):
                raise RuntimeError(f"turn failed for {q.question!r}: {events}")
            calls = model.calls[start:]
            texts = ["\n".join(text_of(m.content) for m in c["messages"]) for c in calls]
            sql_text = next(t for t in texts if "Schema:" in t)
            shown = set(_TABLE_LINE.findall(sql_text))
            chars = sum(len(t) for t in texts)
            per.append({
                "kind": q.kind,
                "tokens": (chars + 3) // 4,
                "sql_call_tokens": (len(sql_text) + 3) // 4,
                "gemma_tokens": sum(count_gemma(t) for t in texts) if count_gemma else None,
                "tables_shown": len(shown),
                "recall": all(g in shown for g in q.gold),
            })
        snap = snapshot(deps.engine, deps.spec)
        whole = render(snap)
        whole_tokens = (len(whole) + 3) // 4
        whole_gemma = count_gemma(whole) if count_gemma else None
    finally:
        runner.close()
        deps.close()
        clear_cache("b7")

    tokens = [p["tokens"] for p in per]
    recall = sum(p["recall"] for p in per) / len(per)
    by_kind = {}
    for kind in sorted({p["kind"] for p in per}):
        sel = [p for p in per if p["kind"] == kind]
        by_kind[kind] = {"questions": len(sel),
                         "recall": round(sum(p["recall"] for p in sel) / len(sel), 3)}
    gemma = [p["gemma_tokens"] for p in per if p["gemma_tokens"] is not None]
    misses = [q.question for q, p in zip(qs, per, strict=True) if not p["recall"]]
    measured = {
        "questions": len(per),
        "tokens_median": med(tokens),
        "tokens_max": max(tokens),
        "gold_recall": round(recall, 3),
        "recall_by_kind": by_kind,
        "tables_shown_median": med([p["tables_shown"] for p in per]),
        "schema_budget": budget,
        "synonym_table": "off (schema_synonyms={})",
        "gold_recall_without_synonym_kind": round(
            sum(p["recall"] for p in per if p["kind"] != "synonym")
            / max(1, sum(p["kind"] != "synonym" for p in per)), 3),
        "gemma_tokens_median": med(gemma) if gemma else None,
        "gemma_tokens_max": max(gemma) if gemma else None,
        "tokens_p90": pct(tokens, 90),
    }
    return result(
        "B7", "Prompt size per question on 2,000 tables, with gold-table recall",
        measured=measured,
        baseline={"whole_schema_tokens": whole_tokens, "whole_schema_gemma_tokens": whole_gemma,
                  "tables": len(snap.tables)},
        ratio=whole_tokens / med(tokens),
        ratio_means="whole-schema tokens / median tokens per question",
        target="<= 4,000 tokens per question with >= 95% gold-table recall",
        met=bool(max(tokens) <= 4_000 and recall >= 0.95),
        headline=["tokens_max", "gold_recall", "whole_schema_tokens"],
        notes="synonym table off (schema_synonyms={}); "
              "tokens = characters / 4 over every call of the question (SQL + answer); "
              "Gemma-tokenizer counts are a cross-check"
              + (f"; missed: {misses[:5]}" if misses else ""),
    )
