"""Reading a model's reply: the SQL inside it, and the tables of a rendered schema.

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


# --- reading a rendered schema -------------------------------------------------------------

_HEADING = re.compile(r"^\s*#{1,6}\s*(?:table\s*[:\-]?\s*)?`?([\w.\"$]+)`?", re.I)
_TABLE_START = re.compile(r"^\s*(?:[-*]\s*)?(?:table\s*[:\-]?\s*)?`?([\w.\"$]+)`?\s*\(", re.I)
_COLUMN_ITEM = re.compile(r"^\s*[-*]\s*`?([\w$]+)`?")
_PIPE_ROW = re.compile(r"^\s*\|\s*`?([\w$]+)`?\s*\|")


def _table_line(line: str) -> tuple[str, list[str]] | None:
    """`- name(col type PK, col type -> t.c) [view] -- comment` -> (name, [col, col])."""
    m = _TABLE_START.match(line)
    if not m or line.lstrip().startswith("|"):
        return None
    depth, start = 0, m.end() - 1
    for i in range(start, len(line)):
        if line[i] == "(":
            depth += 1
        elif line[i] == ")":
            depth -= 1
            if depth == 0:
                body = line[start + 1 : i]
                break
    else:
        return None
    cols = [c.strip().split()[0].strip('`"') for c in _split_top(body) if c.strip()]
    return m.group(1).strip('"'), [c for c in cols if re.fullmatch(r"[\w$]+", c)]


def parse_column_types(text: str) -> dict[tuple[str, str], str]:
    """`{(table, column): type}` from `name(col type, ...)` lines (types as rendered)."""
    out: dict[tuple[str, str], str] = {}
    for line in (text or "").splitlines():
        found = _table_line(line)
        if not found:
            continue
        start = line.index("(", _TABLE_START.match(line).end() - 1)  # type: ignore[union-attr]
        body = line[start + 1 :]
        for item in _split_top(body):
            words = item.strip().rstrip(")").split()
            if len(words) >= 2 and (words[0].strip('`"') in found[1]):
                fk = " fk" if "->" in item or "PK" in words[2:] else ""
                out[(found[0], words[0].strip('`"'))] = words[1].lower() + fk
    return out


def parse_schema_tables(text: str) -> list[tuple[str, list[str]]]:
    """Tables and their columns from a rendered schema (markdown headings, lists, or DDL-ish
    `name(col type, ...)` lines). Best effort: used only to write few-shot examples."""
    tables: list[tuple[str, list[str]]] = []
    current: list[str] | None = None
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        found = _table_line(line)
        if found:
            tables.append(found)
            current = None
            continue
        m = _HEADING.match(line)
        if m:
            current = []
            tables.append((m.group(1).strip('"'), current))
            continue
        if current is None:
            continue
        m = _PIPE_ROW.match(line)
        if m and m.group(1).lower() not in {"column", "name", "field"}:
            current.append(m.group(1))
            continue
        m = _COLUMN_ITEM.match(line)
        if m:
            current.append(m.group(1))
    if any(cols for _, cols in tables):
        tables = [(t, c) for t, c in tables if c]
    return [(t, c) for t, c in tables if t.lower() not in {"schema", "tables", "database"}]


def _split_top(s: str) -> list[str]:
    """Split on commas outside parentheses (`NUMERIC(10, 2)` stays whole)."""
    parts, depth, cur = [], 0, []
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


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
