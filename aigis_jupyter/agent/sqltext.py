"""Reading a model's reply: the SQL inside it, completed where small models slip.

Models wrap SQL in code fences, put prose before or after it, think aloud in `<think>`
blocks, or (a base model continuing "SELECT") omit the first keyword. The guard checks
whatever comes out, so this only has to find the statement, never to make it safe.
"""

from __future__ import annotations

import re

_THINK = re.compile(r"<think>.*?(</think>|$)", re.S | re.I)
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_-]*)[ \t]*\n?(.*?)(```|$)", re.S)
_CTE = r"with\s+(?:recursive\s+)?[\w\"`]+\s*(?:\([^)]*\)\s*)?as\s*\("
_START = re.compile(r"(?im)^[ \t>*-]*(select\b|" + _CTE + ")")
_INLINE_START = re.compile(r"(?i)\b(select\b|" + _CTE + ")")
# statements that are not queries: found only so the guard can refuse them out loud
_OTHER = re.compile(
    r"(?im)^[ \t>*-]*(delete\s+from\b|insert\s+(?:into|or)\b|update\s+\S+\s+set\b|"
    r"drop\s+(?:table|view|database|schema|index)\b|create\s+(?:table|view|index|database|"
    r"schema|or|temp|temporary)\b|alter\s+table\b|truncate\b|grant\b|revoke\b|attach\b|"
    r"detach\b|pragma\b|copy\b|merge\s+into\b|replace\s+into\b|call\b|exec(?:ute)?\b|"
    r"vacuum\b|load\s+data\b|set\s+\w+\s*=)"
)
_CONTINUES = re.compile(
    r"(?i)^\s*(select|from|where|join|left|right|inner|outer|full|cross|on|and|or|group|order|"
    r"having|limit|offset|union|intersect|except|as|case|when|then|else|end|with|\(|\)|,|--)"
)


def _cut_statement(text: str) -> str:
    """From the start of a statement to its end: `;` outside quotes, or prose after a gap."""
    out: list[str] = []
    quote: str | None = None
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == quote:
                if i + 1 < len(text) and text[i + 1] == quote:  # doubled quote escape
                    out.append(ch)
                    i += 1
                else:
                    quote = None
        elif ch in ("'", '"', "`"):
            quote = ch
        elif ch == ";":
            break
        elif ch == "\n" and text[i : i + 2] == "\n\n":
            rest = text[i:].lstrip("\n")
            if not _CONTINUES.match(rest):
                break
        out.append(ch)
        i += 1
    return "".join(out).strip()


def extract_sql(reply: str, *, prefix: str | None = None) -> str:
    """The first SQL statement in `reply`; `prefix` is what the prompt already wrote ("SELECT").

    Returns "" when the reply holds no query at all.
    """
    if not reply:
        return ""
    text = _THINK.sub("", reply).strip()
    if prefix and not _START.search(text) and "```" not in text:
        # a completion model continued our "SELECT": put the keyword back
        text = f"{prefix} {text.lstrip()}"
    fences = [m.group(2) for m in _FENCE.finditer(text) if m.group(2).strip()]
    for body in fences:
        m = _START.search(body) or _INLINE_START.search(body)
        if m:
            return _cut_statement(body[m.start(1) :])
    m = _START.search(text)
    if m:
        return _cut_statement(text[m.start(1) :])
    for body in [*fences, text]:
        m = _OTHER.search(body)
        if m:
            return _cut_statement(body[m.start(1) :])
    return ""


def complete_group_by(sql: str, dialect: str) -> str:
    """Add the GROUP BY a query forgot when it mixes aggregates with plain columns.

    `SELECT segment, COUNT(*) FROM customers` is an error on PostgreSQL but silently one
    arbitrary row on SQLite and MySQL; small models write it often. Grouping by the plain
    columns is the only reading under which the query means anything.
    """
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(sql, read=dialect or None)
    except Exception:  # the guard reports unparseable SQL with a better message
        return sql
    if not isinstance(tree, exp.Select) or tree.args.get("group") or tree.find(exp.Window):
        return sql
    items = [e.unalias() for e in tree.expressions]
    aggregated = [e for e in items if e.find(exp.AggFunc)]
    plain = [e for e in items if not e.find(exp.AggFunc) and not isinstance(e, exp.Literal)]
    if not aggregated or not plain or any(isinstance(e, exp.Star) for e in plain):
        return sql
    return tree.group_by(*[e.copy() for e in plain]).sql(dialect=dialect or None)
