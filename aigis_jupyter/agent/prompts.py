"""Prompts: chat style for instruction-tuned models, completion style for base models.

Only the schema snapshot, the question, earlier questions with their SQL and a small
preview of the result ever reach a model: never credentials, and never more rows than the
preview. Completion prompts (the embedded model) put the stable part first (schema, then
examples) so llama.cpp can reuse the evaluated prefix from one call to the next.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from ..databases.schema import short_type

if TYPE_CHECKING:
    from ..databases.catalog import Table
    from .context import SchemaContext

#: Characters of schema text a completion prompt may carry (about 2,000 tokens).
COMPLETION_SCHEMA_CHARS = 7_000
#: Earlier turns (question + SQL) shown to the model for follow-up questions.
HISTORY_TURNS = 3
#: Characters of a connection's notes a prompt carries (chat, completion).
NOTES_CHAT_CHARS, NOTES_COMPLETION_CHARS = 2_000, 600


@dataclass(frozen=True)
class Lessons:
    """What the SQL prompt learns beyond the schema: verified queries like the question,
    the connection's notes, and the real values the question names."""

    examples: Sequence[tuple[str, str]] = ()
    notes: str | None = None
    hints: Sequence[str] = ()


def _bounded(text: str | None, limit: int) -> str:
    text = (text or "").strip()
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut + " [...]"

SQL_SYSTEM = """You write SQL for a {dialect} database.
Answer the user's question with ONE read-only query (SELECT or WITH ... SELECT) that uses \
only the tables and columns in the schema below. Reply with the SQL only: no explanation, \
no comments. Unless the user asks for everything, limit long lists to 100 rows.
If the question follows up on an earlier one, adapt the earlier query.

Schema:
{schema}"""

REPAIR = """That query failed:
{error}
Write a corrected query for the same question. Reply with the SQL only."""

ANSWER_SYSTEM = """You are a data analyst. Answer the user's question in one to three plain \
sentences using only the query result given. Quote the numbers exactly; do not invent \
anything that is not in the result. Do not repeat the SQL. If the result is empty, say so."""

#: What the embedded model reads before a candidate query when it scores how well the
#: query explains the question (`LocalLlamaChatModel.likelihoods`): stable, so its
#: evaluated tokens are kept between candidates and turns.
LIKELIHOOD_HEADER = """Each SQL query below is followed by the question it answers.

SQL: SELECT COUNT(*) FROM orders WHERE status = 'shipped'
Question: How many orders were shipped?

SQL: SELECT name FROM products ORDER BY price DESC LIMIT 3
Question: What are the 3 most expensive products?

"""

CHART_SYSTEM = """You design Vega-Lite v5 charts. Reply with ONE JSON object: a Vega-Lite \
spec with "mark" and "encoding" that uses only the columns listed. Do not include "data", \
URLs, expressions or params: the data is attached for you."""


# --- result summaries --------------------------------------------------------------------


def _fmt(v: Any) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, float):
        if math.isnan(v):
            return "NULL"
        if 1e5 <= abs(v) < 1e15:  # 2680961.37, not 2.68096e+06
            return f"{v:.2f}".rstrip("0").rstrip(".")
        return f"{v:.6g}" if abs(v) < 1e15 else str(v)
    s = str(v)
    return s if len(s) <= 60 else s[:57] + "..."


def _pairs(cols: list[str], row: Sequence[Any], sep: str = "=") -> str:
    return ", ".join(f"{c}{sep}{_fmt(v)}" for c, v in zip(cols, row, strict=False))


def result_text(preview: dict[str, Any], *, max_rows: int = 10, max_chars: int = 1_500) -> str:
    """A compact, model-friendly view of a result preview (columns, first rows, count)."""
    cols = [str(c) for c in preview.get("columns") or []]
    rows = list(preview.get("rows") or [])
    n = int(preview.get("row_count") or len(rows))
    more = "+" if preview.get("truncated") else ""
    if not rows:
        return f"(no rows; columns: {', '.join(cols)})"
    if len(rows) == 1:
        return _pairs(cols, rows[0])
    lines = [" | ".join(cols)]
    lines += [" | ".join(_fmt(v) for v in r) for r in rows[:max_rows]]
    text = "\n".join(lines)
    if len(text) > max_chars:
        text = text[:max_chars] + "\n..."
    return f"{text}\n({n}{more} rows)"


def _result_line(preview: dict[str, Any], max_rows: int = 5) -> str:
    """One line for a completion prompt: `col=v, col=v; col=v, ... (N rows)`."""
    cols = [str(c) for c in preview.get("columns") or []]
    rows = list(preview.get("rows") or [])
    if not rows:
        return "no rows"
    parts = ["; ".join(_pairs(cols, r) for r in rows[:max_rows])]
    n = int(preview.get("row_count") or len(rows))
    if n > 1:
        parts.append(f"({n}{'+' if preview.get('truncated') else ''} rows)")
    return " ".join(parts)


def fallback_answer(preview: dict[str, Any]) -> str:
    """A plain sentence built from the result, for when a model's answer is unusable."""
    cols = [str(c) for c in preview.get("columns") or []]
    rows = list(preview.get("rows") or [])
    n = int(preview.get("row_count") or len(rows))
    if not rows:
        return "The query returned no rows."
    if len(rows) == 1 and len(cols) == 1:
        return f"The answer is {_fmt(rows[0][0])} ({cols[0]})."
    if len(rows) == 1:
        return f"The query returned one row: {_pairs(cols, rows[0], ' = ')}."
    if n <= SMALL_RESULT_ROWS and len(rows) == n and not preview.get("truncated"):
        return f"The query returned {n} rows: " + "; ".join(
            _pairs(cols, r, " = ") for r in rows) + "."
    more = " or more" if preview.get("truncated") else ""
    first = _pairs(cols, rows[0], " = ")
    return f"The query returned {n}{more} rows; the first is {first}. The table shows them."


#: Results this small are spelled out in full by the fallback answer.
SMALL_RESULT_ROWS = 8


def answer_is_usable(text: str, preview: dict[str, Any], *, strict: bool = False) -> bool:
    """Reject empty or garbage answers, and single-value answers that miss the value.

    `strict` (small base models): an answer about a few rows must name at least two of
    them, or it is a guess about one row ("430 customers." for three segments).
    """
    t = (text or "").strip()
    if len(re.findall(r"[A-Za-z]", t)) < 3:
        return False
    words = t.split()
    if len(words) >= 8 and len(set(words)) < len(words) / 3:  # stuck repeating itself
        return False
    rows = preview.get("rows") or []
    if len(rows) == 1 and len(rows[0]) == 1 and rows[0][0] is not None:
        v = rows[0][0]
        candidates = {_fmt(v), str(v)}
        if isinstance(v, float) and v.is_integer():
            candidates.add(str(int(v)))
        if isinstance(v, (int, float)):
            candidates.add(f"{v:,}")
        return any(c in t for c in candidates)
    if strict and 1 < len(rows) <= SMALL_RESULT_ROWS:
        named = {_fmt(r[0]) for r in rows if r and r[0] is not None and _fmt(r[0]) in t}
        return len(named) >= 2
    return True


# --- chat prompts ---------------------------------------------------------------------------


def lesson_text(lessons: Lessons) -> str:
    """The part of a chat system prompt that carries notes, value hints and the preface of
    the verified examples (which follow as messages)."""
    out = ""
    notes = _bounded(lessons.notes, NOTES_CHAT_CHARS)
    if notes:
        out += "\n\nNotes from the people who use this database (follow them):\n" + notes
    if lessons.hints:
        out += ("\n\nValues the question names, as stored in the database:\n"
                + "\n".join(f"- {h}" for h in lessons.hints))
    if lessons.examples:
        out += ("\n\nVerified queries for similar questions come first; reuse their "
                "tables, joins and filters where they fit.")
    return out


def sql_messages(
    question: str, schema: str, dialect: str, history: Sequence[tuple[str, str]],
    lessons: Lessons | None = None,
) -> list[BaseMessage]:
    lessons = lessons or Lessons()
    system = SQL_SYSTEM.format(dialect=dialect, schema=schema) + lesson_text(lessons)
    msgs: list[BaseMessage] = [SystemMessage(system)]
    for q, sql in list(lessons.examples)[::-1]:  # the closest one last, next to the question
        msgs += [HumanMessage(q), AIMessage(sql)]
    for q, sql in list(history)[-HISTORY_TURNS:]:
        msgs += [HumanMessage(q), AIMessage(sql)]
    msgs.append(HumanMessage(question))
    return msgs


def repair_messages(msgs: list[BaseMessage], bad_sql: str, error: str) -> list[BaseMessage]:
    return [*msgs, AIMessage(bad_sql or "(no SQL)"), HumanMessage(REPAIR.format(error=error))]


def answer_messages(question: str, sql: str, preview: dict[str, Any]) -> list[BaseMessage]:
    body = f"Question: {question}\n\nSQL that ran:\n{sql}\n\nResult:\n{result_text(preview)}"
    return [SystemMessage(ANSWER_SYSTEM), HumanMessage(body)]


def chart_messages(question: str, columns: str, mark: str | None) -> list[BaseMessage]:
    want = f" The user asked for a {mark} chart." if mark else ""
    body = f"Question: {question}\nColumns of the result:\n{columns}\n{want}".rstrip()
    return [SystemMessage(CHART_SYSTEM), HumanMessage(body)]


# --- completion prompts (base models) --------------------------------------------------------


def _columns(schema: SchemaContext) -> list[tuple[str, list[str]]]:
    """(name as a query writes it, column names) of the chosen tables that have columns."""
    tables = [(schema.qualified(t), [c.name for c in t.columns]) for t in schema.tables]
    return [(t, cols) for t, cols in tables if cols] or tables


def compact_schema(schema: SchemaContext, *,
                   limit: int = COMPLETION_SCHEMA_CHARS) -> tuple[str, list[str]]:
    """Schema as SQL comments (`-- Table t(a, b)`), and the table names shown."""
    tables = _columns(schema)
    if tables:
        lines = [f"-- Table {t}({', '.join(cols)})" for t, cols in tables]
    else:
        lines = ["-- " + line for line in schema.text.splitlines() if line.strip()]
    out, size = [], 0
    for line in lines:
        if size + len(line) > limit:
            break
        out.append(line)
        size += len(line) + 1
    return "\n".join(out), [t for t, _ in tables]


def name_words(name: str) -> str:
    """`InvoiceLine` / `invoice_line` -> `invoice line`."""
    name = name.split(".")[-1]
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).replace("_", " ").lower().strip()


def plural(name: str) -> str:
    """`category` -> `categories`, `order_item` -> `order items`."""
    w = name_words(name)
    if w.endswith("s"):
        return w
    if w.endswith("y") and not w.endswith(("ay", "ey", "oy", "uy")):
        return w[:-1] + "ies"
    return w + "s"


_NUMERIC = re.compile(r"int|real|num|dec|float|double|money")
_TEXT = re.compile(r"text|char|string|clob")
_CATEGORY = re.compile(r"(?i)country|city|state|status|category|type|kind|region|genre|group")


def _types(schema: SchemaContext) -> dict[tuple[str, str], str]:
    """`{(table, column): short type}`, with ` fk` after the type of a key column."""
    out: dict[tuple[str, str], str] = {}
    for t in schema.tables:
        keys = {c for fk in t.foreign_keys for c in fk.columns}
        name = schema.qualified(t)
        for c in t.columns:
            key = " fk" if c.primary_key or c.name in keys else ""
            out[(name, c.name)] = short_type(c.type) + key
    return out


def _examples(schema: SchemaContext, question: str) -> list[tuple[str, str]]:
    """Worked question/SQL pairs over this schema's own tables (not the ones asked about)."""
    tables, types = _columns(schema), _types(schema)
    q = question.lower()
    pool = [t for t in tables if name_words(t[0]) not in q and plural(t[0]) not in q] or tables
    if not pool:
        return []

    def is_key(t: str, c: str) -> bool:
        return (
            bool(re.search(r"(?i)(^id$|_id$|[a-z]Id$)", c))
            or types.get((t, c), "").endswith(" fk")
        )

    def pick(pred: Any) -> tuple[str, str] | None:
        for t, cols in pool:
            for c in cols:
                if not is_key(t, c) and pred(t, c):
                    return t, c
        return None

    out: list[tuple[str, str, str]] = []
    t1 = pool[0][0]
    out.append(("count", f"How many {plural(t1)} are there?", f"SELECT COUNT(*) FROM {t1}"))
    named = pick(lambda t, c: re.search(r"(?i)name|title", c) and t != t1) or pick(
        lambda t, c: re.search(r"(?i)name|title", c)
    )
    if named:
        t, c = named
        out.append(("list", f"List the {plural(c)} of all {plural(t)}.", f"SELECT {c} FROM {t}"))
    num = pick(lambda t, c: re.search(r"real|num|dec|float|double|money", types.get((t, c), "")))
    num = num or pick(lambda t, c: _NUMERIC.search(types.get((t, c), "")))
    if num:
        t, c = num
        out.append(("top", f"What are the 3 {plural(t)} with the highest {name_words(c)}?",
                    f"SELECT * FROM {t} ORDER BY {c} DESC LIMIT 3"))
        out.append(("avg", f"What is the average {name_words(c)} of all {plural(t)}?",
                    f"SELECT AVG({c}) FROM {t}"))
    cat = pick(lambda t, c: _TEXT.search(types.get((t, c), "")) and _CATEGORY.search(c)) or pick(
        lambda t, c: _TEXT.search(types.get((t, c), ""))
        and not re.search(r"(?i)name|title|email|phone|address|fax", c)
    )
    if cat:
        t, c = cat
        out.append(("group", f"How many {plural(t)} are there for each {name_words(c)}?",
                    f"SELECT {c}, COUNT(*) FROM {t} GROUP BY {c}"))
    # a small model copies the nearest example: put the one shaped like the question last
    shape = question_shape(question)
    out.sort(key=lambda e: e[0] == shape)
    return [(q_, sql) for _, q_, sql in out]


_SHAPES: list[tuple[str, re.Pattern[str]]] = [
    ("group", re.compile(r"(?i)\b(each|per|by)\b")),
    ("avg", re.compile(r"(?i)\b(average|mean|avg)\b")),
    ("top", re.compile(r"(?i)\b(highest|top|most|longest|largest|biggest|best|lowest|least|"
                       r"smallest|shortest|cheapest|latest|earliest|first|last)\b")),
    ("count", re.compile(r"(?i)\b(how many|number of|count)\b")),
    ("list", re.compile(r"(?i)\b(list|names?|which|show|give|what are|who)\b")),
]


def question_shape(question: str) -> str:
    """The rough shape of the SQL a question needs (count, list, top, avg, group)."""
    for shape, pattern in _SHAPES:
        if pattern.search(question or ""):
            return shape
    return "list"


_FOLLOW_UP = re.compile(
    r"^\s*(now|and|also|only|instead|same|what about|how about|but|then|just|as a|as an)\b|"
    r"\b(them|those|that|these|it|previous|above|same)\b",
    re.I,
)


def is_follow_up(question: str) -> bool:
    """A question that leans on the previous one ("now only for 2023", "and by region?")."""
    return bool(_FOLLOW_UP.search(question or "")) or len(question.split()) <= 3


def sql_completion(
    question: str, schema: SchemaContext, dialect: str, history: Sequence[tuple[str, str]],
    lessons: Lessons | None = None,
) -> str:
    """`-- schema`, notes, worked and verified examples, earlier turns, value hints, then
    the question and `SELECT` (the stable part first, for llama.cpp's prefix cache)."""
    text, _ = compact_schema(schema)
    lessons = lessons or Lessons()
    lines = [f"-- {dialect} database schema", text, ""]
    notes = _bounded(lessons.notes, NOTES_COMPLETION_CHARS)
    if notes:
        lines += [f"-- Note: {line.strip()}" for line in notes.splitlines() if line.strip()]
        lines.append("")
    for q, sql in _examples(schema, question):
        lines += [f"-- Question: {q}", f"{sql};"]
    for q, sql in list(lessons.examples)[::-1]:  # a small model copies the nearest: last
        lines += [f"-- Question: {' '.join(q.split())}", f"{' '.join(sql.split())};"]
    # a base model copies the nearest example, so earlier turns only help follow-ups
    if is_follow_up(question):
        for q, sql in list(history)[-HISTORY_TURNS:]:
            lines += [f"-- Question: {' '.join(q.split())}", f"{' '.join(sql.split())};"]
    lines += [f"-- Hint: {h}" for h in lessons.hints]
    lines += [f"-- Question: {' '.join(question.split())}", sql_lead(question, schema.tables)]
    return "\n".join(lines)


_GROUP_WORD = re.compile(r"(?i)\b(?:each|per|by)\s+([a-z_][\w ]*)")


def sql_lead(question: str, tables: Sequence[Table]) -> str:
    """How the completion prompt starts the query: `SELECT`, or `SELECT col,` for a grouping.

    A small base model ignores "each X" and writes a bare count; starting the statement
    with the column the question names (and nothing else) steers it to group by it.
    """
    m = _GROUP_WORD.search(question or "")
    if not m:
        return "SELECT"
    wanted = m.group(1).split()[0].lower()
    stems = {wanted, wanted.rstrip("s"), f"{wanted}_name", f"{wanted}_id"}
    for table in tables:
        for col in table.columns:
            if col.name.lower() in stems:
                return f"SELECT {col.name},"
    return "SELECT"


def repair_completion(prompt: str, bad_sql: str, error: str) -> str:
    """The same prompt with the failed attempt and the error shown before a new `SELECT`."""
    head = prompt[: prompt.rfind("SELECT")].rstrip("\n")
    err = " ".join(error.split())[:300]
    wrong = " ".join(bad_sql.split())
    return f"{head}\n-- Wrong: {wrong}\n-- Error: {err}\n-- Correct query:\nSELECT"


ANSWER_EXAMPLES = """Question: How many products are there?
SQL: SELECT COUNT(*) FROM products
Result: COUNT(*)=42
Answer: There are 42 products.

Question: Which region has the most customers?
SQL: SELECT region, COUNT(*) AS n FROM customers GROUP BY region ORDER BY n DESC LIMIT 1
Result: region=North, n=17
Answer: North has the most customers (17).

"""


def answer_completion(question: str, sql: str, preview: dict[str, Any]) -> str:
    return (
        f"{ANSWER_EXAMPLES}Question: {' '.join(question.split())}\n"
        f"SQL: {' '.join(sql.split())}\nResult: {_result_line(preview)}\nAnswer:"
    )


# at most four: the OpenAI API refuses more
SQL_STOP = [";", "\n--", "\n\n", "```"]
ANSWER_STOP = ["\n\n", "Question:", "\nSQL:", "<end_of_turn>"]
