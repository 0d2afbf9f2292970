"""Vega-Lite charts for query results: recommend, accept a model's proposal safely, shrink.

`ask_analyst` returns `{"type": "vega_lite_spec", "spec": ...}`. The spec is plain data that
the browser renders; nothing a model writes is ever executed here. A model may propose a
spec, but it is only kept if it is valid Vega-Lite, names real columns and contains no
URLs or expressions; otherwise a deterministic recommender picks the chart from the
column types. Data is always inline (`data.values`), and large results are aggregated
first so a spec stays small enough to send over SSE and store in a notebook.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .errors import BadInput

if TYPE_CHECKING:
    import pandas as pd

SCHEMA_URL = "https://vega.github.io/schema/vega-lite/v5.json"
#: Rows inlined at most; more are aggregated (or sampled, for scatter plots).
MAX_POINTS = 5_000
#: Bars shown at most; the rest are folded into "Other".
MAX_CATEGORIES = 30
#: Distinct values a column may have to be used as a colour.
MAX_COLORS = 10
#: Points at most in a scatter plot (sampled deterministically beyond that).
MAX_SCATTER = 2_000
#: Time buckets at most after aggregating a long time series.
MAX_BUCKETS = 1_000
HISTOGRAM_BINS = 20

_CHART_WORDS = re.compile(
    r"\b(chart|plot|graph|visuali[sz]e|visuali[sz]ation|diagram|histogram|trend|trends|"
    r"bar|bars|pie|scatter|line\s+chart|over\s+time)\b",
    re.IGNORECASE,
)
_MARK_WORDS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\bhistogram\b", re.I), "histogram"),
    (re.compile(r"\bscatter", re.I), "point"),
    (re.compile(r"\bpie\b|\bdonut\b", re.I), "arc"),
    (re.compile(r"\barea\b", re.I), "area"),
    (re.compile(r"\bline\b|\btrend", re.I), "line"),
    (re.compile(r"\bbars?\b|\bcolumn chart\b", re.I), "bar"),
]
_MEAN_WORDS = re.compile(r"avg|average|mean|rate|ratio|price|pct|percent|share|score", re.I)
_ISO_DATE = re.compile(r"^\d{4}-\d{2}(-\d{2})?([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?.*)?$")
# What could fetch, link or evaluate (`labelExpr` and the like too): a model spec with it is dropped
_FORBIDDEN_KEYS = {
    "url", "href", "expr", "signal", "test", "calculate", "params", "datasets", "$ref",
    "loader", "usermeta", "filter", "lookup",
}
#: vega-embed's options (read from usermeta): no "View Source", which writes the spec as HTML.
EMBED = {"embedOptions": {"actions": {"export": True, "source": False, "compiled": False,
                                      "editor": False}}}


def wants_chart(question: str | None) -> bool:
    """True when the user asked for a chart in words ("plot", "as a bar chart", "trend")."""
    return bool(question and _CHART_WORDS.search(question))


def requested_mark(question: str | None) -> str | None:
    """The chart type named in the question, if any ("histogram", "point", "bar", ...)."""
    if not question:
        return None
    for pattern, mark in _MARK_WORDS:
        if pattern.search(question):
            return mark
    return None


# --- column kinds -------------------------------------------------------------------------


@dataclass
class Kinds:
    """Columns of a result by the role they can play in a chart."""

    temporal: list[str]
    ordinal: list[str]  # year-like integers: ordered, drawn as lines
    quantitative: list[str]
    nominal: list[str]

    @property
    def time(self) -> list[str]:
        return self.temporal + self.ordinal


def _is_year_like(name: str, s: pd.Series) -> bool:
    if not re.search(r"year|yr\b", name, re.I):
        return False
    vals = s.dropna()
    return len(vals) > 0 and bool(((vals >= 1800) & (vals <= 2200)).all())


def _is_id_like(name: str) -> bool:
    return bool(re.fullmatch(r"(?i:id|.*_id|code|.*_code|zip)|.*[a-z]Id", name))


def prepare(df: pd.DataFrame) -> tuple[pd.DataFrame, Kinds]:
    """Normalise types (Decimal -> float, ISO strings -> datetime) and classify columns.
    Names lose `"` and `\\`: Vega-Lite writes field names into Vega expressions unescaped."""
    import pandas as pd

    out = df.copy(deep=False)
    out.columns = [str(c).replace('"', "'").replace("\\", "/") for c in out.columns]
    kinds = Kinds([], [], [], [])
    for col in out.columns:
        s = out[col]
        if pd.api.types.is_bool_dtype(s):
            kinds.nominal.append(col)
        elif pd.api.types.is_datetime64_any_dtype(s):
            kinds.temporal.append(col)
        elif pd.api.types.is_numeric_dtype(s):
            if _is_year_like(col, s):
                kinds.ordinal.append(col)
            elif _is_id_like(col) and len(out.columns) > 1:
                kinds.nominal.append(col)
            else:
                kinds.quantitative.append(col)
        else:
            sample = s.dropna().head(200)
            if len(sample) and all(
                isinstance(v, (int, float, Decimal)) and not isinstance(v, bool) for v in sample
            ):
                out[col] = pd.to_numeric(s, errors="coerce").astype("float64")
                kinds.quantitative.append(col)
            elif len(sample) and all(
                hasattr(v, "isoformat") or (isinstance(v, str) and _ISO_DATE.match(v))
                for v in sample
            ):
                out[col] = pd.to_datetime(s, errors="coerce", utc=False, format="mixed")
                if pd.api.types.is_datetime64_any_dtype(out[col]):
                    kinds.temporal.append(col)
                else:
                    out[col] = s
                    kinds.nominal.append(col)
            else:
                kinds.nominal.append(col)
    return out, kinds


def chart_worthy(df: pd.DataFrame) -> bool:
    """A chart adds something unasked: a time series, or categories with numbers (4+ rows)."""
    if df is None or len(df) < 4 or len(df.columns) < 2:
        return False
    _, k = prepare(df.head(500))
    return bool(k.quantitative and (k.time or k.nominal))


# --- aggregation --------------------------------------------------------------------------


def _agg_for(col: str) -> str:
    return "mean" if _MEAN_WORDS.search(col) else "sum"


def _time_bucket(s: pd.Series) -> str | None:
    """A pandas period that leaves at most MAX_BUCKETS buckets over the series' span."""
    lo, hi = s.min(), s.max()
    if lo is None or hi is None or lo != lo or hi != hi:
        return None
    days = max((hi - lo).total_seconds() / 86_400, 0)
    for freq, span in (("h", 1 / 24), ("D", 1), ("W", 7), ("M", 30.5), ("Q", 91.5), ("Y", 366)):
        if days / span <= MAX_BUCKETS:
            return freq
    return "Y"


def _group(df: pd.DataFrame, dims: list[str], measures: list[str]) -> pd.DataFrame:
    if not measures:
        return df.groupby(dims, dropna=False, observed=True).size().reset_index(name="count")
    aggs = {m: _agg_for(m) for m in measures}
    return df.groupby(dims, dropna=False, observed=True).agg(aggs).reset_index()


def _top_categories(df: pd.DataFrame, cat: str, measure: str | None) -> pd.DataFrame:
    """Keep the MAX_CATEGORIES largest categories; fold the rest into "Other"."""
    if df[cat].nunique(dropna=False) <= MAX_CATEGORIES:
        return df
    weight = (
        df.groupby(cat, dropna=False)[measure].sum()
        if measure
        else df.groupby(cat, dropna=False).size()
    )
    keep = set(weight.sort_values(ascending=False).head(MAX_CATEGORIES - 1).index)
    out = df.copy()
    cats = out[cat].astype("object")
    out[cat] = cats.where(cats.isin(keep), "Other")
    return out


def _sample(df: pd.DataFrame, limit: int = MAX_POINTS) -> pd.DataFrame:
    if len(df) <= limit:
        return df
    return df.sample(n=limit, random_state=0).sort_index()


def _values(df: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-safe records: ISO dates, floats, None for missing values."""
    return json.loads(df.to_json(orient="records", date_format="iso", default_handler=str))


# --- the recommender ----------------------------------------------------------------------


def _enc(field: str, vtype: str, **extra: Any) -> dict[str, Any]:
    d: dict[str, Any] = {"field": field, "type": vtype}
    d.update(extra)
    return d


def _title(question: str | None) -> str | None:
    if not question:
        return None
    q = " ".join(question.split())
    return q if len(q) <= 80 else q[:77] + "..."


def recommend(
    df: pd.DataFrame, question: str | None = None, mark: str | None = None
) -> dict[str, Any]:
    """A valid Vega-Lite v5 spec for this result, chosen from its column types.

    `mark` (or a chart type named in `question`) is honoured when the data allows it.
    """
    data, k = prepare(df)
    mark = mark or requested_mark(question)
    spec = _recommend(data, k, mark)
    spec = {"$schema": SCHEMA_URL, **spec}
    title = _title(question)
    if title:
        spec["title"] = title
    # The recommender's own templates are schema-checked by the test suite, so only the
    # cheap safety checks run here: the schema validator's first import costs seconds
    # (jsonschema loads its format plugins), which every session's first chart would pay.
    return {**check_safe(spec), "usermeta": EMBED}


def _recommend(data: pd.DataFrame, k: Kinds, mark: str | None) -> dict[str, Any]:
    q, n, t = k.quantitative, k.nominal, k.time
    if len(data) == 0:
        raise BadInput("The result is empty: there is nothing to chart.")
    if mark == "histogram" and q:
        return _histogram(data, q[0])
    if mark == "point" and len(q) >= 2:
        return _scatter(data, q[0], q[1], n)
    if t and mark not in ("bar", "arc"):
        return _time_series(data, k, mark or "line")
    if (n or t) and q:
        if n:
            return _bars(data, n[0], q[0], n[1] if len(n) > 1 else None, mark or "bar")
        ctype = "temporal" if t[0] in k.temporal else "ordinal"
        return _bars(data, t[0], q[0], None, mark or "bar", ctype)
    if len(q) >= 2:
        return _scatter(data, q[0], q[1], n)
    if q:
        if len(data) == 1:
            return _bars(data.assign(value=q[0]), "value", q[0], None, "bar")
        return _histogram(data, q[0])
    if n:
        return _bars(_group(data, [n[0]], []), n[0], "count", None, mark or "bar")
    raise BadInput("This result has no columns that can be charted; ask for a table instead.")


def _time_series(data: pd.DataFrame, k: Kinds, mark: str) -> dict[str, Any]:

    x = k.time[0]
    xtype = "temporal" if x in k.temporal else "ordinal"
    measures = k.quantitative[:5]
    color = next(
        (c for c in k.nominal if data[c].nunique(dropna=False) <= MAX_COLORS), None
    )
    dims = [x] + ([color] if color else [])
    frame = data
    if len(frame) > MAX_POINTS or frame.duplicated(subset=dims).any():
        if xtype == "temporal" and len(frame) > MAX_POINTS:
            freq = _time_bucket(frame[x]) or "D"
            frame = frame.assign(
                **{x: frame[x].dt.to_period(freq).dt.start_time.astype("datetime64[ns]")}
            )
        frame = _group(frame, dims, measures)
    frame = frame.sort_values(x)
    if mark not in ("line", "area", "point", "bar"):
        mark = "line"
    m: dict[str, Any] = {"type": mark, "tooltip": True}
    if mark == "line":
        m["point"] = len(frame) <= 60
    if not measures:
        frame = _group(frame, dims, [])
        measures = ["count"]
    enc: dict[str, Any] = {"x": _enc(x, xtype, title=x)}
    if len(measures) > 1 and not color:
        fold = {"fold": measures, "as": ["series", "value"]}
        enc["y"] = _enc("value", "quantitative", title="value")
        enc["color"] = _enc("series", "nominal")
        return {"data": {"values": _values(frame[[x, *measures]])}, "transform": [fold],
                "mark": m, "encoding": enc}
    enc["y"] = _enc(measures[0], "quantitative")
    if color:
        enc["color"] = _enc(color, "nominal")
    cols = list(dict.fromkeys([*dims, measures[0]]))
    return {"data": {"values": _values(frame[cols])}, "mark": m, "encoding": enc}


def _bars(
    data: pd.DataFrame,
    cat: str,
    measure: str,
    color: str | None,
    mark: str,
    cat_type: str = "nominal",
) -> dict[str, Any]:
    if color and data[color].nunique(dropna=False) > MAX_COLORS:
        color = None
    dims = [cat] + ([color] if color else [])
    frame = data[[*dims, measure]]
    if cat_type == "temporal" and len(frame) > MAX_BUCKETS:
        freq = _time_bucket(frame[cat]) or "D"
        frame = frame.assign(
            **{cat: frame[cat].dt.to_period(freq).dt.start_time.astype("datetime64[ns]")}
        )
    # group first (one pass over a big frame), then fold small categories on the small result
    if len(frame) > MAX_POINTS or frame.duplicated(subset=dims).any():
        frame = _group(frame, dims, [measure])
    if cat_type == "nominal" and frame[cat].nunique(dropna=False) > MAX_CATEGORIES:
        frame = _group(_top_categories(frame, cat, measure), dims, [measure])
    if mark == "arc":
        enc = {
            "theta": _enc(measure, "quantitative"),
            "color": _enc(cat, "nominal", sort={"field": measure, "order": "descending"}),
        }
        return {"data": {"values": _values(frame)}, "mark": {"type": "arc", "tooltip": True},
                "encoding": enc}
    if cat_type == "nominal":
        x = _enc(cat, "nominal", sort="-y", axis={"labelLimit": 160})
    else:  # time keeps its order
        x = _enc(cat, cat_type)
        frame = frame.sort_values(cat)
    enc2: dict[str, Any] = {
        "x": x,
        "y": _enc(measure, "quantitative"),
    }
    if color:
        enc2["color"] = _enc(color, "nominal")
    mtype = mark if mark in ("bar", "point", "line", "area") else "bar"
    return {"data": {"values": _values(frame)}, "mark": {"type": mtype, "tooltip": True},
            "encoding": enc2}


def _scatter(data: pd.DataFrame, x: str, y: str, nominal: list[str]) -> dict[str, Any]:
    color = next((c for c in nominal if data[c].nunique(dropna=False) <= MAX_COLORS), None)
    cols = [x, y] + ([color] if color else [])
    frame = _sample(data[cols].dropna(subset=[x, y]), MAX_SCATTER)
    enc: dict[str, Any] = {"x": _enc(x, "quantitative"), "y": _enc(y, "quantitative")}
    if color:
        enc["color"] = _enc(color, "nominal")
    return {"data": {"values": _values(frame)}, "mark": {"type": "point", "tooltip": True},
            "encoding": enc}


def _histogram(data: pd.DataFrame, col: str) -> dict[str, Any]:
    """Binned in pandas, so a million values become twenty rows."""
    import numpy as np
    import pandas as pd

    vals = pd.to_numeric(data[col], errors="coerce").dropna().to_numpy(dtype="float64")
    if len(vals) == 0:
        raise BadInput(f"Column '{col}' has no numbers to chart.")
    counts, edges = np.histogram(vals, bins=HISTOGRAM_BINS)
    frame = pd.DataFrame({"bin_start": edges[:-1], "bin_end": edges[1:], "count": counts})
    enc = {
        "x": _enc("bin_start", "quantitative", bin={"binned": True}, title=col),
        "x2": {"field": "bin_end"},
        "y": _enc("count", "quantitative"),
    }
    return {"data": {"values": _values(frame)}, "mark": {"type": "bar", "tooltip": True},
            "encoding": enc}


# --- validation and model proposals --------------------------------------------------------


def check_safe(spec: dict[str, Any]) -> dict[str, Any]:
    """The checks every spec must pass before it is sent: a JSON object with its data
    inline as records, and no URLs, links or expressions anywhere. BadInput otherwise."""
    if not isinstance(spec, dict):
        raise BadInput("A chart spec must be a JSON object.")
    if not isinstance(spec.get("data"), dict) or "values" not in spec["data"]:
        raise BadInput("A chart spec must carry its data inline in data.values.")
    if _find_forbidden(spec):
        raise BadInput("A chart spec may not contain URLs, links or expressions.")
    values = spec["data"]["values"]
    if not isinstance(values, list) or not all(isinstance(v, dict) for v in values):
        raise BadInput("A chart spec's data.values must be a list of records.")
    return spec


def validate(spec: dict[str, Any]) -> dict[str, Any]:
    """`check_safe`, then the Vega-Lite schema shipped with Altair; BadInput if invalid."""
    from altair.vegalite.v6.schema import core

    check_safe(spec)
    values = spec["data"]["values"]
    # the rows are plain records we produced; checking a few keeps validation fast
    probe = {**spec, "data": {**spec["data"], "values": values[:5]}}
    try:
        core.TopLevelSpec.validate(probe)
    except Exception as exc:  # jsonschema.ValidationError: keep the first line only
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BadInput(f"Not a valid Vega-Lite spec: {first}") from exc
    return spec


def _find_forbidden(node: Any) -> str | None:
    if isinstance(node, dict):
        for key, value in node.items():
            if (key in _FORBIDDEN_KEYS or key.endswith("Expr")) and value != EMBED:
                return key
            hit = _find_forbidden(value)
            if hit:
                return hit
    elif isinstance(node, list):
        for item in node:
            hit = _find_forbidden(item)
            if hit:
                return hit
    return None


def parse_json_object(text: str) -> dict[str, Any] | None:
    """The first JSON object in a model's reply (code fences and prose around it ignored)."""
    if not text:
        return None
    fenced = re.search(r"```(?:json|vega-lite|vegalite)?\s*(\{.*?\})\s*```", text, re.S | re.I)
    candidates = [fenced.group(1)] if fenced else []
    start = text.find("{")
    if start >= 0:
        candidates.append(text[start : text.rfind("}") + 1])
    for cand in candidates:
        try:
            obj = json.loads(cand)
        except (ValueError, TypeError):
            continue
        if isinstance(obj, dict):
            return obj
    return None


def _fields(node: Any) -> set[str]:
    out: set[str] = set()
    if isinstance(node, dict):
        f = node.get("field")
        if isinstance(f, str):
            out.add(f)
        for v in node.values():
            out |= _fields(v)
    elif isinstance(node, list):
        for v in node:
            out |= _fields(v)
    return out


def from_proposal(
    proposal: str | dict[str, Any] | None, df: pd.DataFrame, question: str | None = None
) -> dict[str, Any] | None:
    """A model's spec made safe (our data inline, no URLs/expressions), or None if unusable."""
    spec = parse_json_object(proposal) if isinstance(proposal, str) else proposal
    if not isinstance(spec, dict) or "mark" not in spec or "encoding" not in spec:
        return None
    spec = {k: v for k, v in spec.items() if k not in ("data", "$schema", "datasets")}
    # no `"` or `\` in its strings either: Vega-Lite writes titles into expressions unescaped
    if _find_forbidden(spec) or re.search(r'\\[\\"]', json.dumps(spec)):
        return None
    data, kinds = prepare(df)
    if len(data) > MAX_POINTS:
        dims = kinds.time[:1] + kinds.nominal[:1]
        data = _group(data, dims, kinds.quantitative[:5]) if dims else _sample(data)
    produced: set[str] = set()
    for tr in spec.get("transform") or []:
        if isinstance(tr, dict):
            as_ = tr.get("as")
            produced |= {as_} if isinstance(as_, str) else set(as_ or [])
            for agg in tr.get("aggregate") or []:
                if isinstance(agg, dict) and isinstance(agg.get("as"), str):
                    produced.add(agg["as"])
    if not _fields(spec.get("encoding")) <= set(map(str, data.columns)) | produced:
        return None
    spec = {"$schema": SCHEMA_URL, "data": {"values": _values(data)}, **spec}
    if "title" not in spec and _title(question):
        spec["title"] = _title(question)
    try:
        return {**validate(spec), "usermeta": EMBED}
    except BadInput:
        return None


def build_chart(
    df: pd.DataFrame,
    question: str | None = None,
    proposal: str | dict[str, Any] | None = None,
    mark: str | None = None,
) -> dict[str, Any]:
    """`ask_analyst`'s output: the model's spec if usable, else the recommender's."""
    spec = from_proposal(proposal, df, question) if proposal else None
    if spec is None:
        spec = recommend(df, question, mark)
    return {"type": "vega_lite_spec", "spec": spec}


def describe_columns(df: pd.DataFrame) -> str:
    """One line per column (name, kind, example) for a model asked to propose a chart."""
    data, k = prepare(df.head(200))
    lines = []
    for col in data.columns:
        kind = (
            "temporal" if col in k.temporal
            else "ordinal" if col in k.ordinal
            else "quantitative" if col in k.quantitative
            else "nominal"
        )
        example = data[col].dropna().head(1).tolist()
        lines.append(f"- {col} ({kind}), e.g. {example[0] if example else 'null'}")
    return "\n".join(lines)
