"""A Jupyter server extension for the sidebar's browser tests: a scripted model, `scripted`,
registered in the running server's service next to the real ones (`local` among them).

The browser test (`tests/test_sidebar.py`) starts `jupyter lab` with this module on
PYTHONPATH and enabled in `ServerApp.jpserver_extensions`. The model answers like a chat
model: SQL when asked for SQL, a Vega-Lite proposal when asked for a chart, and words,
streamed one word at a time with a pause so a browser sees them arrive. Which script it
follows depends on words of the question (`SCRIPTS`); three of them fill everything the
sidebar shows with markup and script (`HOSTILE`), for the test that it all stays text, and
one is the question whose answer a person saves as a verified query.
"""

from __future__ import annotations

import json
from typing import Any

from langchain_core.messages import BaseMessage
from scripted import PromptRouted, question_of, register_when_ready

MODEL_NAME = "scripted"

#: Markup that would run script (each sets `window.__pwned`) if the page made it elements.
#: The chart proposal's texts use the first five: a `"` would make the server drop it.
HOSTILE = [
    "<img src=x onerror=window.__pwned=1>",
    "<script>window.__pwned=2</script>",
    "<a href=javascript:window.__pwned=3>link</a>",
    "javascript:window.__pwned=4",
    "<iframe src=javascript:window.__pwned=5></iframe>",
    '<svg onload="window.__pwned=6">',
]
#: The result's column names: markup as well (no dots, which Vega-Lite reads as nested fields).
HOSTILE_COLUMNS = ["<img src=x onerror=alert(7)>", "<svg onload=alert(8)>"]
#: A result of one row per `HOSTILE` string, written by the model as SQL on any database.
HOSTILE_SQL = " UNION ALL ".join(
    f"SELECT '{v}' AS \"{HOSTILE_COLUMNS[0]}\", {n} AS \"{HOSTILE_COLUMNS[1]}\"" if n == 1
    else f"SELECT '{v}', {n}" for n, v in enumerate((v.replace("'", "''") for v in HOSTILE), 1))
#: An answer in markdown with raw HTML, links and an image (a fetch that would leak data).
HOSTILE_ANSWER = (
    "Here is what the labels hold: " + " and ".join(HOSTILE) + ". In markdown: "
    "[a link](javascript:window.__pwned=7), ![a tracking pixel](https://example.invalid/p.png), "
    "`<b>code</b>` and a formula \\begin{equation}\\href{javascript:window.__pwned=8}{x}"
    "\\end{equation} end."
)
#: Words with no number in them: the server states a result of several rows itself otherwise.
TRAPPED_ANSWER = "The bars show <script>alert(document.domain)</script> as text."
#: A table that does not exist, so the turn ends with an error that quotes its name.
POISONED_TABLE = "<img src=x onerror=alert(9)>"

#: The SQL of the question the verified-query step teaches (`categories` below).
CATEGORIES_SQL = "SELECT COUNT(*) AS categories FROM categories"

#: (a word of the question, SQL, answer, seconds between streamed words)
SCRIPTS: list[tuple[str, str, str, float]] = [
    ("segment",
     "SELECT segment, COUNT(*) AS customers FROM customers GROUP BY segment ORDER BY segment",
     # true to the demo's data, and shown a sentence at a time once checked against it
     "There are 3 segments. Consumer has 430 customers. Enterprise has 47 customers. "
     "Small Business has 123 customers. Consumer is the largest segment. Enterprise is the "
     "smallest. So most customers are consumers.",
     0.08),
    ("slowly",
     "SELECT COUNT(*) AS orders FROM orders",
     "Counting the orders takes a while. " + " ".join(["still counting."] * 60),
     0.5),
    ("hostile", HOSTILE_SQL, HOSTILE_ANSWER, 0.02),
    ("trapped", HOSTILE_SQL, TRAPPED_ANSWER, 0.02),
    ("poisoned", f'SELECT * FROM "{POISONED_TABLE}"', "", 0.0),
    # the question a person verifies (saves with its SQL as a verified query), then asks again
    ("categories", CATEGORIES_SQL, "Here is how many product categories the shop sells.", 0.02),
]
DEFAULT = ("", "SELECT COUNT(*) AS regions FROM regions", "There are 5 regions.", 0.05)

_TEXT_CHART = {  # markup in every text a chart shows, and in data the server replaces
    "mark": {"type": "bar", "tooltip": True},
    "title": HOSTILE[0],
    "description": HOSTILE[1],
    "data": {"values": [{HOSTILE_COLUMNS[0]: HOSTILE[2], HOSTILE_COLUMNS[1]: 1}]},
    "encoding": {
        "x": {"field": HOSTILE_COLUMNS[0], "type": "nominal", "title": HOSTILE[4]},
        "y": {"field": HOSTILE_COLUMNS[1], "type": "quantitative", "title": HOSTILE[1]},
        "tooltip": [{"field": HOSTILE_COLUMNS[0], "type": "nominal", "title": HOSTILE[2]},
                    {"field": HOSTILE_COLUMNS[1], "type": "quantitative", "title": HOSTILE[3]}],
    },
}
#: The chart the model proposes, by the script's word (the segments' bar chart otherwise).
CHARTS: dict[str, dict[str, Any]] = {
    "hostile": _TEXT_CHART,
    # links, embedding options, an expression and a title that would end the string Vega-Lite
    # writes it into: the server must not pass any of them on
    "trapped": {**_TEXT_CHART,
                "encoding": {**_TEXT_CHART["encoding"], "href": {"field": HOSTILE_COLUMNS[0]},
                             "color": {"field": HOSTILE_COLUMNS[0], "type": "nominal",
                                       "title": '", "x": scale("y", datum), "'}},
                "usermeta": {"embedOptions": {"actions": True, "sourceHeader": HOSTILE[1]}},
                "config": {"axis": {"labelExpr": "'<b>' + datum.label + '</b>'"}}},
}
DEFAULT_CHART = {"mark": "bar", "encoding": {"x": {"field": "segment", "type": "nominal"},
                                            "y": {"field": "customers", "type": "quantitative"}}}


def _script(question: str) -> tuple[str, str, str, float]:
    low = question.lower()
    return next((s for s in SCRIPTS if s[0] in low), DEFAULT)


class ScriptedModel(PromptRouted):
    """Replies by the kind of prompt (the agent's system messages) and the question."""

    def sql(self, messages: list[BaseMessage]) -> str:
        if str(messages[-1].content).startswith("That query failed:"):  # a repair: the same
            return str(messages[-2].content)
        return _script(question_of(messages))[1]

    def chart(self, messages: list[BaseMessage]) -> str:
        return json.dumps(CHARTS.get(_script(question_of(messages))[0], DEFAULT_CHART))

    def answer(self, messages: list[BaseMessage]) -> tuple[str, float]:
        _, _, words, delay = _script(question_of(messages))
        return words, delay


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    return [{"module": "sidebar_server"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    register_when_ready(serverapp, MODEL_NAME, ScriptedModel)
