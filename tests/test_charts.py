"""Charts: the recommender's choices by result shape, validity, safety and size."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest

from aigis_jupyter import charts
from aigis_jupyter.errors import BadInput


def _enc(spec: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {ch: (e.get("field"), e.get("type")) for ch, e in spec["encoding"].items()}


def _mark(spec: dict[str, Any]) -> str:
    m = spec["mark"]
    return m["type"] if isinstance(m, dict) else m


MONTHS = pd.date_range("2023-01-01", periods=12, freq="MS")

# result shape -> (question, expected mark, expected encodings)
CASES: list[tuple[str, pd.DataFrame, str | None, str, dict[str, tuple[Any, Any]]]] = [
    ("time series", pd.DataFrame({"month": MONTHS, "revenue": np.arange(12.0)}), None,
     "line", {"x": ("month", "temporal"), "y": ("revenue", "quantitative")}),
    ("ISO date strings", pd.DataFrame({"day": ["2024-01-01", "2024-01-02", "2024-01-03"],
                                       "orders": [3, 5, 4]}), None,
     "line", {"x": ("day", "temporal"), "y": ("orders", "quantitative")}),
    ("time + series", pd.DataFrame({"month": list(MONTHS[:4]) * 2, "region": ["N"] * 4 + ["S"] * 4,
                                    "sales": range(8)}), None,
     "line", {"x": ("month", "temporal"), "y": ("sales", "quantitative"),
              "color": ("region", "nominal")}),
    ("year numbers", pd.DataFrame({"year": [2021, 2022, 2023, 2024], "orders": [5, 6, 9, 7]}), None,
     "line", {"x": ("year", "ordinal"), "y": ("orders", "quantitative")}),
    ("category + number", pd.DataFrame({"region": list("NSEW"),
                                        "total": [Decimal("1.5"), Decimal(2), Decimal(3), 4]}),
     None, "bar", {"x": ("region", "nominal"), "y": ("total", "quantitative")}),
    ("id + number", pd.DataFrame({"CustomerId": [1, 2, 3, 4], "spend": [1.0, 2.0, 3.0, 4.0]}),
     None, "bar", {"x": ("CustomerId", "nominal"), "y": ("spend", "quantitative")}),
    ("two numbers", pd.DataFrame({"price": np.linspace(1, 10, 30), "qty": np.arange(30)}), None,
     "point", {"x": ("price", "quantitative"), "y": ("qty", "quantitative")}),
    ("one number", pd.DataFrame({"price": np.linspace(1, 10, 50)}), None,
     "bar", {"x": ("bin_start", "quantitative"), "x2": ("bin_end", None),
             "y": ("count", "quantitative")}),
    ("category only", pd.DataFrame({"status": ["a", "a", "b", "b", "b", "c"]}), None,
     "bar", {"x": ("status", "nominal"), "y": ("count", "quantitative")}),
    ("asked: pie", pd.DataFrame({"genre": list("abc"), "n": [1, 2, 3]}), "as a pie chart",
     "arc", {"theta": ("n", "quantitative"), "color": ("genre", "nominal")}),
    ("asked: bar over time", pd.DataFrame({"month": MONTHS, "revenue": np.arange(12.0)}),
     "show it as a bar chart", "bar",
     {"x": ("month", "temporal"), "y": ("revenue", "quantitative")}),
    ("asked: histogram", pd.DataFrame({"name": list("abcdef"), "price": np.arange(6.0)}),
     "histogram of prices", "bar", {"x": ("bin_start", "quantitative"), "x2": ("bin_end", None),
                                    "y": ("count", "quantitative")}),
    ("asked: scatter", pd.DataFrame({"a": np.arange(5.0), "b": np.arange(5.0) ** 2}),
     "scatter plot", "point", {"x": ("a", "quantitative"), "y": ("b", "quantitative")}),
]


@pytest.mark.parametrize(("label", "df", "question", "mark", "encodings"), CASES,
                         ids=[c[0] for c in CASES])
def test_recommender_table(label: str, df: pd.DataFrame, question: str | None, mark: str,
                           encodings: dict[str, tuple[Any, Any]]) -> None:
    spec = charts.recommend(df, question)
    assert _mark(spec) == mark
    got = _enc(spec)
    for channel, expected in encodings.items():
        assert got[channel] == expected, (label, channel, got)
    assert spec["$schema"].endswith("/v5.json")
    assert isinstance(spec["data"]["values"], list) and spec["data"]["values"]
    assert "url" not in json.dumps(spec["data"])
    charts.validate(spec)  # valid Vega-Lite (Altair's schema)
    json.dumps(spec)  # JSON-safe: dates as ISO strings, Decimals as numbers


def test_every_spec_is_schema_valid_with_all_rows() -> None:
    """Validation normally samples the rows; check a few specs against the full schema."""
    from altair.vegalite.v6.schema import core

    for _, df, q, _, _ in CASES:
        core.TopLevelSpec.validate(charts.recommend(df, q))


def test_invalid_specs_are_refused() -> None:
    with pytest.raises(BadInput):
        charts.validate({"mark": "bar", "data": {"url": "http://evil/x.csv"}})
    with pytest.raises(BadInput):
        charts.validate({"mark": "bogus", "data": {"values": [{"a": 1}]}})
    with pytest.raises(BadInput):
        charts.validate({"mark": "bar", "data": {"values": [{"a": 1}]},
                         "encoding": {"x": {"field": "a", "type": "nominal"}},
                         "transform": [{"calculate": "alert(1)", "as": "b"}]})


def test_nothing_to_chart() -> None:
    with pytest.raises(BadInput):
        charts.recommend(pd.DataFrame({"a": [None, None]}, dtype=object).iloc[:0])


def test_model_proposal_used_when_valid_and_safe() -> None:
    df = pd.DataFrame({"region": list("NSEW"), "total": [1, 2, 3, 4]})
    proposal = ("Here you go:\n```json\n{\"mark\": \"point\", \"encoding\": {\"x\": {\"field\": "
                "\"region\", \"type\": \"nominal\"}, \"y\": {\"field\": \"total\", \"type\": "
                "\"quantitative\"}}, \"data\": {\"url\": \"https://evil.example/data.json\"}}\n```")
    out = charts.build_chart(df, "plot totals", proposal)
    spec = out["spec"]
    assert out["type"] == "vega_lite_spec" and _mark(spec) == "point"
    rows = [{"region": r, "total": t} for r, t in zip("NSEW", [1, 2, 3, 4], strict=True)]
    assert spec["data"] == {"values": rows}
    assert "evil" not in json.dumps(spec)


@pytest.mark.parametrize("proposal", [
    "I think a bar chart would be nice.",  # no JSON
    '{"mark": "bar", "encoding": {"x": {"field": "nope", "type": "nominal"}}}',  # unknown column
    '{"mark": "bar", "encoding": {"x": {"field": "region", "type": "nominal", '
    '"condition": {"test": "datum.x", "value": 1}}}}',  # expressions
    '{"mark": "bar", "encoding": {"href": {"field": "region"}}}',  # links
    '{"mark": "sparkle", "encoding": {"x": {"field": "region", "type": "nominal"}}}',  # invalid
])
def test_unusable_proposals_fall_back_to_the_recommender(proposal: str) -> None:
    df = pd.DataFrame({"region": list("NSEW"), "total": [1, 2, 3, 4]})
    spec = charts.build_chart(df, "chart of totals", proposal)["spec"]
    assert _mark(spec) == "bar" and _enc(spec)["x"] == ("region", "nominal")


def test_chart_intent() -> None:
    assert charts.wants_chart("show revenue by month as a line chart")
    assert charts.wants_chart("Plot it")
    assert charts.wants_chart("visualise sales")
    assert not charts.wants_chart("How many customers are there?")
    assert charts.requested_mark("as a bar chart") == "bar"
    assert charts.requested_mark("scatter plot of price vs qty") == "point"
    df = pd.DataFrame({"region": list("NSEW"), "total": [1, 2, 3, 4]})
    assert charts.chart_worthy(df)
    assert not charts.chart_worthy(df.head(2))
    assert not charts.chart_worthy(pd.DataFrame({"n": [25]}))


MILLION = 1_000_000


@pytest.fixture(scope="module")
def big() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    start = pd.Timestamp("2020-01-01")
    return pd.DataFrame({
        "ts": start + pd.to_timedelta(rng.integers(0, 3 * 365 * 86_400, MILLION), unit="s"),
        "category": rng.choice([f"cat{i}" for i in range(200)], MILLION),
        "amount": rng.random(MILLION) * 100,
        "qty": rng.integers(1, 10, MILLION),
    })


@pytest.mark.parametrize("cols", [["ts", "amount"], ["category", "amount"], ["amount", "qty"],
                                  ["amount"], ["category"], ["ts", "category", "amount"]])
def test_million_rows_are_shrunk(big: pd.DataFrame, cols: list[str]) -> None:
    # how fast is benchmark B6's business, not a test's
    spec = charts.recommend(big[cols])
    size = len(json.dumps(spec))
    assert size <= 200 * 1024, size
    if "category" in cols and "ts" not in cols:
        assert len(spec["data"]["values"]) <= charts.MAX_CATEGORIES
