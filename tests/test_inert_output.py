"""Markup from a model or a database stays text in what a notebook shows, and out of charts.

The magic's outputs are HTML that the notebook trusts once the cell ran, so every string in
them must be escaped; chart specs are rendered by vega-embed, so a model's proposal must not
bring links, expressions or embedding options. The hostile strings are the sidebar test's
(`sidebar_server.HOSTILE`): the browser test proves the same for the JupyterLab sidebar.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from IPython.core.displaypub import DisplayPublisher
from IPython.core.interactiveshell import InteractiveShell
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from sidebar_server import CHARTS, HOSTILE, HOSTILE_ANSWER, HOSTILE_COLUMNS, HOSTILE_SQL

from aigis_jupyter import charts
from aigis_jupyter.models import ModelInfo
from aigis_jupyter.rendering import VEGALITE_MIME, TurnView, error_html, table_html

#: The elements the notebook renderings are made of, none with an attribute but `class`.
OWN_TAGS = {"style", "div", "span", "details", "summary", "pre", "code", "table", "thead",
            "tbody", "tr", "th", "td"}


class Markup(HTMLParser):
    """The elements and the text of an HTML fragment, as a browser would parse them."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text = ""
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_data(self, data: str) -> None:
        self.text += data


def assert_inert(html: str, *shown: str) -> None:
    """Only the rendering's own elements, and every hostile string there as its text."""
    parsed = Markup(html)
    foreign = [(t, a) for t, a in parsed.tags
               if t not in OWN_TAGS or any(name != "class" for name, _ in a)]
    assert not foreign, foreign
    for s in shown:
        assert s in parsed.text, s


def spec_keys(node: Any) -> set[str]:
    """Every key of a chart spec outside its data (whose values are the result's)."""
    if isinstance(node, dict):
        return set(node) | {k for key, v in node.items() if key != "data" for k in spec_keys(v)}
    if isinstance(node, list):
        return {k for v in node for k in spec_keys(v)}
    return set()


def hostile_frame() -> pd.DataFrame:
    return pd.DataFrame({HOSTILE_COLUMNS[0]: HOSTILE,
                         HOSTILE_COLUMNS[1]: list(range(1, len(HOSTILE) + 1))})


def test_a_turn_with_markup_everywhere_renders_as_text() -> None:
    view = TurnView()
    for event in [
        {"type": "status", "phase": "sql"},
        {"type": "sql", "sql": HOSTILE_SQL},
        {"type": "table", "columns": HOSTILE_COLUMNS, "rows": [[v, n] for n, v in
                                                                enumerate(HOSTILE, 1)],
         "row_count": len(HOSTILE), "truncated": False},
        {"type": "chunk", "content": HOSTILE_ANSWER},
        {"type": "error", "message": f"Table '{HOSTILE[0]}' does not exist.",
         "reason": "unknown_table", "action": {"kind": "set_env", "name": HOSTILE[1]}},
    ]:
        view.feed(event)
        assert_inert(view.html(with_table=True))
    html = view.html(with_table=True)
    assert_inert(html, HOSTILE_SQL, HOSTILE_ANSWER, *HOSTILE, *HOSTILE_COLUMNS)
    assert "<script>" not in html and "<img" not in html


def test_errors_and_tables_escape_every_string() -> None:
    assert_inert(error_html(" ".join(HOSTILE))["text/html"], *HOSTILE)
    assert_inert(table_html({"columns": HOSTILE, "rows": [HOSTILE, [None] * len(HOSTILE)]}),
                 *HOSTILE)


def test_a_proposal_with_markup_in_its_texts_is_kept_as_data() -> None:
    """Titles and descriptions are text to Vega (drawn, not parsed); the data is ours."""
    spec = charts.build_chart(hostile_frame(), "chart it", CHARTS["hostile"])["spec"]
    assert spec["title"] == HOSTILE[0] and spec["description"] == HOSTILE[1]
    assert spec["data"]["values"] == hostile_frame().to_dict(orient="records")
    assert spec["usermeta"] == charts.EMBED  # no "View Source": it would write the HTML


@pytest.mark.parametrize("extra", [
    {"encoding": {"href": {"field": HOSTILE_COLUMNS[0]}}},  # links
    {"usermeta": {"embedOptions": {"actions": True, "sourceHeader": HOSTILE[1]}}},
    {"config": {"axis": {"labelExpr": "datum.label"}}},  # a Vega expression
    {"encoding": {"x": {"field": HOSTILE_COLUMNS[0], "type": "nominal",
                        "axis": {"labelExpr": "datum.label"}}}},
    {"mark": {"type": "bar", "tooltip": {"expr": "datum"}}},
    # Vega-Lite writes channel titles into a Vega expression as "...": quotes would end it
    {"encoding": {"y": {"field": HOSTILE_COLUMNS[1], "type": "quantitative",
                        "title": '", "x": scale("y", datum), "'}}},
    {"encoding": {"y": {"field": HOSTILE_COLUMNS[1], "type": "quantitative", "title": "a\\"}}},
])
def test_a_proposal_that_links_evaluates_or_embeds_is_not_used(extra: dict[str, Any]) -> None:
    """Such a spec is dropped whole: the recommender draws the result instead."""
    base = CHARTS["hostile"]
    proposal = {**base, **extra, "encoding": {**base["encoding"], **extra.get("encoding", {})}}
    assert charts.from_proposal(proposal, hostile_frame(), "chart it") is None
    spec = charts.build_chart(hostile_frame(), "chart it", proposal)["spec"]  # the recommender's
    keys = spec_keys({k: v for k, v in spec.items() if k != "usermeta"})
    assert not {k for k in keys if k in ("href", "usermeta") or k.endswith("Expr")}, keys
    assert spec["usermeta"] == charts.EMBED
    charts.validate(spec)


def test_column_names_cannot_end_the_strings_vega_lite_writes_them_into() -> None:
    frame = pd.DataFrame({'a"]+x+datum["b': ["p", "q"], "n\\": [1, 2]})
    spec = charts.build_chart(frame, "a bar chart")["spec"]
    assert set(spec["data"]["values"][0]) == {"a']+x+datum['b", "n/"}
    assert not re.search(r'\\[\\"]', json.dumps(spec["encoding"]))


# -- the magic, end to end ---------------------------------------------------------------------

class Recorder(DisplayPublisher):
    """Keeps every display and display update the magic publishes."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.records: list[dict[str, Any]] = []

    def publish(self, data: Any, metadata: Any = None, source: Any = None, *,
                transient: Any = None, update: bool = False, **kw: Any) -> None:
        self.records.append(data)


@pytest.fixture
def shell(settings: Any, tmp_path: Path) -> Iterator[tuple[InteractiveShell, Recorder]]:
    """A shell with the extension loaded, a demo connection and a model that writes markup."""
    from aigis_jupyter.demo import build_demo_sqlite
    from aigis_jupyter.magics import AigisMagics
    from aigis_jupyter.service import AigisService

    svc = AigisService(settings)
    scope = svc.user("alice", is_admin=True)
    db = build_demo_sqlite(tmp_path / "demo.sqlite")
    scope.create_connection({"name": "demo", "db_type": "sqlite", "host": str(db)})
    replies = [HOSTILE_SQL, json.dumps(CHARTS["hostile"]), HOSTILE_ANSWER]
    model = GenericFakeChatModel(messages=iter([AIMessage(content=r) for r in replies]))
    svc.models.register(ModelInfo(name="scripted", provider="test", supports_tools=False),
                        lambda: model)
    sh = InteractiveShell.instance()
    rec = Recorder(shell=sh)
    sh.display_pub = rec
    sh.register_magics(AigisMagics(shell=sh, scope=scope))
    yield sh, rec
    svc.close()
    InteractiveShell.clear_instance()


def test_the_magics_outputs_show_markup_as_text(shell: tuple[InteractiveShell, Recorder]) -> None:
    sh, rec = shell
    res = sh.run_cell("%%aigis --conn demo --model scripted -o df\nChart the hostile rows")
    assert res.error_in_exec is None, rec.records
    htmls = [r["text/html"] for r in rec.records if "text/html" in r]
    assert htmls
    for html in htmls:
        assert_inert(html)
    assert_inert(htmls[-1], HOSTILE_SQL, *HOSTILE)
    specs = [r[VEGALITE_MIME] for r in rec.records if VEGALITE_MIME in r]
    assert specs and specs[-1]["title"] == HOSTILE[0]
    assert specs[-1]["usermeta"] == charts.EMBED
    # the DataFrame the cell returns, as the notebook shows it
    with pd.option_context("display.max_colwidth", None):  # no "…" in the long strings
        frame = Markup(res.result._repr_html_())
    assert {t for t, _ in frame.tags} <= OWN_TAGS
    assert not [a for _, attrs in frame.tags for a, _ in attrs if a.startswith("on") or a in
                ("src", "href")]
    assert all(s in frame.text for s in HOSTILE + HOSTILE_COLUMNS)
