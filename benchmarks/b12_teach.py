"""B12 — teaching the embedded model: accuracy and grounded answers, without and with
verified queries.

Runs `benchmarks/accuracy.py` with the `local` model on the Chinook dev questions twice:
untaught, then taught the verified queries of `benchmarks/teach_chinook.jsonl` (other
questions on the same tables, written for this benchmark; none of them is a dev
question). Reports execution accuracy and the share of answers whose every number and
name is in the result (grounded) for both runs, and how many statements ran as verified.
Also: how often the right example ranks first, by words and (where the `embeddings`
extra is installed) by meaning, on paraphrases of the taught questions.

Targets: 100 % grounded answers in both runs; accuracy with the verified queries at
least that without.
"""

from __future__ import annotations

import time
from typing import Any

from .common import ROOT, Ctx, med, result

EXAMPLES = ROOT / "benchmarks" / "teach_chinook.jsonl"
#: Paraphrases of taught questions and the taught question each should find.
PARAPHRASES = [
    ("What is the number of artists?", "How many artists are there?"),
    ("count of albums", "How many albums does the store have?"),
    ("Give me the media type names", "List the names of all media types."),
    ("Names of the three tracks with the shortest duration",
     "What are the 3 shortest tracks? Give their names."),
    ("customers based in Canada", "Which customers live in Canada? Give first and last names."),
    ("mean total of an invoice", "What is the average invoice total?"),
    ("number of customers per country", "How many customers are there in each country?"),
    ("which artists released the most albums? top 5", "Which 5 artists have the most albums?"),
    ("invoice totals by year", "What was the total invoice amount in each year?"),
    ("Who manages Jane Peacock?",
     "Who is the manager of the employee Jane Peacock? Give first and last name."),
    ("best selling genres, top three by quantity", "What are the top 3 genres by units sold?"),
    ("the five biggest spenders among customers",
     "Which 5 customers spent the most? Show names and total."),
    ("albums with over 20 songs", "Which albums have more than 20 tracks? Give their titles."),
    ("songs by AC/DC", "List the names of all tracks by the artist AC/DC."),
    ("average track duration for every genre",
     "What is the average length in milliseconds of the tracks in each genre?"),
]


def _ranking(how: str) -> dict[str, Any]:
    from aigis_jupyter.agent.verified import ranker, similar
    from aigis_jupyter.teach_commands import read_examples

    if ranker(how) != how:
        return {"available": False}
    examples = [(e["question"], e["sql"]) for e in read_examples(EXAMPLES)]
    similar("warm up", examples, how=how)
    hits, times = 0, []
    for q, expected in PARAPHRASES:
        t0 = time.perf_counter()
        found = similar(q, examples, k=1, how=how)
        times.append((time.perf_counter() - t0) * 1000)
        hits += bool(found and found[0].question == expected)
    return {"available": True, "top1": round(hits / len(PARAPHRASES), 3),
            "ms_median": round(med(times), 2)}


def run(ctx: Ctx) -> dict[str, Any]:
    from .b8_accuracy import accuracy_rows, ready

    ready()
    limit = ctx.size(0, 2)
    ctx.log(f"B12: accuracy.py with the local model, untaught then taught "
            f"({limit or 'all'} question(s))")
    plain, _ = accuracy_rows(limit)
    taught, _ = accuracy_rows(limit, "--examples", str(EXAMPLES))

    def share(rows: list[dict[str, Any]], key: str) -> float:
        return round(sum(bool(r[key]) for r in rows) / len(rows), 3)

    lexical, embedding = _ranking("lexical"), _ranking("embedding")
    measured = {
        "questions": len(plain),
        "accuracy_untaught": share(plain, "ok"),
        "accuracy_taught": share(taught, "ok"),
        "grounded_untaught": share(plain, "grounded"),
        "grounded_taught": share(taught, "grounded"),
        "verified_statements": sum(bool(r["verified"]) for r in taught),
        "turn_s_median_untaught": round(med([r["latency_s"] for r in plain]), 2),
        "turn_s_median_taught": round(med([r["latency_s"] for r in taught]), 2),
        "examples": sum(1 for line in EXAMPLES.read_text().splitlines() if line.strip()),
        "ranking_top1_lexical": lexical.get("top1"),
        "ranking_ms_lexical": lexical.get("ms_median"),
        "ranking_top1_embedding": embedding.get("top1"),
        "ranking_ms_embedding": embedding.get("ms_median"),
    }
    met = (measured["grounded_untaught"] == 1.0 and measured["grounded_taught"] == 1.0
           and measured["accuracy_taught"] >= measured["accuracy_untaught"])
    return result(
        "B12", "Teaching the embedded model: accuracy and grounded answers, Chinook dev",
        measured=measured, baseline={"accuracy_untaught": measured["accuracy_untaught"]},
        ratio=(round(measured["accuracy_taught"] / measured["accuracy_untaught"], 2)
               if measured["accuracy_untaught"] else None),
        target="100% grounded answers; accuracy taught >= untaught", met=met,
        headline=["accuracy_untaught", "accuracy_taught", "grounded_taught",
                  "ranking_top1_lexical", "ranking_top1_embedding"],
        per_question=[{"id": a["id"], "ok_untaught": a["ok"], "ok_taught": b["ok"],
                       "grounded_untaught": a["grounded"], "grounded_taught": b["grounded"],
                       "verified": b["verified"], "sql_taught": b["sql"],
                       "answer_taught": b["answer"]} for a, b in zip(plain, taught,
                                                                       strict=True)],
    )
