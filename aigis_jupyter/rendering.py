"""Turns one chat turn's event stream into what a notebook shows.

The magics and the chat widget render the same stream a browser does; this module folds
events into a view (status, streamed answer, SQL, table preview, chart, error) and renders
it as HTML plus a plain-text twin for frontends and tests without HTML.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .service.contract import TurnRecord

VEGALITE_MIME = "application/vnd.vegalite.v5+json"

PHASES = {
    "schema": "Reading the schema…",
    "sql": "Writing SQL…",
    "executing": "Running the query…",
    "charting": "Drawing a chart…",
    "answering": "Writing the answer…",
}

_STYLE = (
    "<style>.aigis-turn{font-family:var(--jp-ui-font-family,sans-serif);line-height:1.45}"
    ".aigis-status{color:#666;font-size:90%}.aigis-error{color:#b00020;border-left:3px solid"
    " #b00020;padding:2px 8px;margin:4px 0}.aigis-answer{white-space:pre-wrap;margin:4px 0}"
    ".aigis-turn pre{background:rgba(127,127,127,.08);padding:6px;overflow:auto}"
    ".aigis-spinner{display:inline-block;width:.8em;height:.8em;margin-right:.4em;"
    "vertical-align:-.1em;border:2px solid currentColor;border-right-color:transparent;"
    "border-radius:50%;animation:aigis-spin .8s linear infinite}"
    "@keyframes aigis-spin{to{transform:rotate(360deg)}}</style>"
)
#: Answers quote money ("$49.00 … $6.00"): the notebook's math typesetter must leave them be.
_NO_MATH = "tex2jax_ignore mathjax_ignore"


def action_text(action: Mapping[str, Any] | None) -> str:
    """A core error's next step in notebook terms (the commands a notebook user has)."""
    if not action:
        return ""
    kind = action.get("kind")
    if kind == "pick_model":
        return "Pick a model with `%aigis model use NAME` (see `%aigis model list`)."
    if kind == "pick_connection":
        return ("Pick a connection with `%aigis connections use NAME` (see "
                "`%aigis connections list`).")
    if kind == "add_connection":
        return ("See your connections with `%aigis connections list`, or add one with "
                "`%aigis connections add NAME ...`.")
    if kind == "new_thread":
        return "Start a thread with `%aigis thread new`, or see yours with `%aigis thread list`."
    if kind == "set_env":
        return (f"Set {action.get('name')} in the environment (e.g. "
                f"`%env {action.get('name')}=...`) and try again.")
    if kind == "install_extra":
        return f"Install it with `%pip install 'aigis-jupyter[{action.get('name')}]'`."
    if kind == "readonly_role":
        return ("`%aigis connections readonly-role NAME` prints the SQL of a read-only login "
                "(`--apply --save-as NEW` creates it and a connection that uses it).")
    if kind == "rotate_keys":
        return "Re-seal the stored passwords with `!aigis keys rotate`."
    if kind == "upgrade_store":
        return "Upgrade the store with `!aigis db upgrade`."
    if kind == "retry":
        return "Run the cell again."
    return ""


def thread_label(thread: Mapping[str, Any]) -> str:
    """A thread as a person tells it apart: its title, its connection and when it was used."""
    when = str(thread.get("updated_at") or thread.get("created_at") or "")[:16].replace("T", " ")
    parts = [thread.get("title") or "untitled", thread.get("connection_name") or "no connection",
             when]
    return " · ".join(str(p) for p in parts if p)


def error_message(error: Mapping[str, Any]) -> str:
    """An error event (or `AigisError.to_dict()`) as one notebook sentence."""
    return " ".join(p for p in (str(error.get("message") or ""),
                                action_text(error.get("action"))) if p)


@dataclass
class TurnView(TurnRecord):
    """The state of one answer as its events arrive, with its notebook renderings."""

    @property
    def status_text(self) -> str:
        if self.done:
            return ""
        return PHASES.get(self.phase or "", "Thinking…")

    def html(self, *, with_table: bool = False) -> str:
        parts = [_STYLE, f'<div class="aigis-turn {_NO_MATH}">']
        if self.status_text:
            parts.append('<div class="aigis-status"><span class="aigis-spinner"></span>'
                         f"{html.escape(self.status_text)}</div>")
        if self.error:
            parts.append(f'<div class="aigis-error">⚠ {html.escape(error_message(self.error))}'
                         "</div>")
        if self.answer:
            parts.append(f'<div class="aigis-answer">{html.escape(self.answer)}</div>')
        if self.sql:
            parts.append(
                f"<details><summary>{html.escape(self.sql_label)}</summary>"
                f"<pre><code>{html.escape(self.sql)}</code></pre></details>"
            )
        if self.table:
            parts.append(f'<div class="aigis-status">{html.escape(self.table_caption())}</div>')
            if with_table:
                parts.append(table_html(self.table))
        if self.done and self.suggestions:
            parts.append(f'<div class="aigis-status">{html.escape(self.next_line())}</div>')
        parts.append("</div>")
        return "".join(parts)

    @property
    def sql_label(self) -> str:
        return "SQL (verified query)" if self.verified else "SQL"

    def next_line(self) -> str:
        """The suggested follow-ups as one line (a notebook has no buttons to offer)."""
        return "You could ask next: " + " · ".join(self.suggestions)

    def table_caption(self) -> str:
        if not self.table:
            return ""
        n = self.table.get("row_count", 0)
        more = " (truncated at the row cap)" if self.table.get("truncated") else ""
        return f"{n} row{'s' if n != 1 else ''}{more}"

    def text(self) -> str:
        lines: list[str] = []
        if self.status_text:
            lines.append(self.status_text)
        if self.error:
            lines.append(f"Error: {error_message(self.error)}")
        if self.answer:
            lines.append(self.answer)
        if self.sql:
            lines.append(f"{self.sql_label}: {self.sql}")
        if self.table:
            lines.append(self.table_caption())
        if self.done and self.suggestions:
            lines.append(self.next_line())
        return "\n".join(lines)

    def bundle(self, *, with_table: bool = False) -> dict[str, str]:
        return {"text/html": self.html(with_table=with_table), "text/plain": self.text()}


def table_html(table: dict[str, Any]) -> str:
    """A small HTML table from a `table` event's preview rows."""
    cols = table.get("columns") or []
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>"
        for row in table.get("rows") or []
    )
    return f'<table class="dataframe"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _cell(v: Any) -> str:
    return "" if v is None else str(v)


def chart_bundle(spec: dict[str, Any]) -> dict[str, Any]:
    """Native Vega-Lite for frontends that render it, with a text fallback for the rest."""
    title = spec.get("title") or spec.get("mark") or "chart"
    if isinstance(title, dict):
        title = title.get("text") or json.dumps(title)[:60]
    return {VEGALITE_MIME: spec, "text/plain": f"<Vega-Lite chart: {title}>"}


def error_html(message: str) -> dict[str, str]:
    """A short readable error, never a traceback wall."""
    return {
        "text/html": f'{_STYLE}<div class="aigis-error {_NO_MATH}">⚠ {html.escape(message)}</div>',
        "text/plain": f"Error: {message}",
    }


def schema_frame(info: Mapping[str, Any], table: str | None = None) -> Any:
    """A schema as a DataFrame: one row per table, or per column of `table`."""
    import pandas as pd

    from .errors import BadInput

    tables = list(info.get("tables") or [])
    if table is None:
        rows = [{"table": t["qualified"], "kind": t["kind"], "rows": t["rows"],
                 "columns": len(t["columns"]),
                 "primary key": ", ".join(c["name"] for c in t["columns"] if c["primary_key"]),
                 "references": ", ".join(sorted({fk["ref_table"] for fk in t["foreign_keys"]})),
                 "comment": t.get("comment") or ""} for t in tables]
        return pd.DataFrame(rows, columns=["table", "kind", "rows", "columns", "primary key",
                                           "references", "comment"])
    want = table.lower()
    found = next((t for t in tables if want in (t["qualified"].lower(), t["name"].lower())), None)
    if found is None:
        import difflib

        names = [t["qualified"] for t in tables]
        close = difflib.get_close_matches(table, names, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(close)}?" if close else f" Tables: {', '.join(names)}."
        raise BadInput(f"There is no table {table!r} here.{hint}")
    refs = {c: f"{fk['ref_table']}.{rc}" for fk in found["foreign_keys"]
            for c, rc in zip(fk["columns"], fk["ref_columns"], strict=False)}
    rows = [{"column": c["name"], "type": c["type"], "nullable": c["nullable"],
             "key": "PK" if c["primary_key"] else ("FK" if c["name"] in refs else ""),
             "references": refs.get(c["name"], ""), "comment": c.get("comment") or ""}
            for c in found["columns"]]
    return pd.DataFrame(rows, columns=["column", "type", "nullable", "key", "references",
                                       "comment"])


def warnings_text(result: Mapping[str, Any]) -> str:
    """The warnings of a tested connection, each with its next step, one per line."""
    return "\n".join(f"⚠ {error_message(w)}" for w in result.get("warnings") or [])
