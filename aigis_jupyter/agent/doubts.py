"""When the query that ran looks unlike the question, the answer says it may be wrong.

A small model often writes a query of the wrong shape: `SELECT *` for "how many ...", a
bare count for "how many ... in each ...", no ordering for "the top 5". Its result is then
true of the query and not of the question. Comparing the question's shape (count, group,
top, average) with the statement's own parts catches the plain mismatches; the answer then
says so, shows where to look (the SQL), and suggests rephrasing or a stronger model.
"""

from __future__ import annotations

import re

from .prompts import question_shape

_AVERAGE = re.compile(r"(?i)\b(average|avg|mean)\b")
#: A number the question states (not one inside a quoted name, a word or a date part).
_NUMBER = re.compile(r"(?<![\w.,])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\w.,]?\d)|"
                     r"(?<![\w.,])\d+(?:\.\d+)?(?![\w]|[.,]\d)")
#: A quoted name: its words ask for nothing ("the word 'Greatest'" is no superlative, the
#: 5 of "'Symphony No. 5'" no number).
QUOTED = re.compile(r"(?<!\w)['\"\u2018\u201c][^'\"\u2019\u201d]+['\"\u2019\u201d](?!\w)")
#: Words that ask for what is absent ("never sold", "customers with no invoices").
_NEGATION = re.compile(r"(?i)\b(never|not|no(?!\.\s*\d|\s+(?:duplicate|repeat|double))|without|"
                       r"none|nobody|nothing)\b|n't\b")
#: What a statement that excludes or finds absence is written with.
_EXCLUDES = re.compile(r"(?i)\bNOT\b|\bIS\s+NULL\b|<>|!=|\bEXCEPT\b|=\s*0(?![.\d])|<\s*1(?![.\d])")

#: What the answer adds when the query looks unlike the question.
UNSURE_LEAD = "This answer may be wrong:"


def doubts(question: str, sql: str, dialect: str | None = None) -> list[str]:
    """Why the statement may not answer the question (empty when nothing looks off)."""
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(sql, read=dialect or None)
    except Exception:
        return []
    select = tree if isinstance(tree, exp.Select) else tree.find(exp.Select)
    if select is None:
        return []
    items = list(select.expressions)
    aggregates = {type(a).__name__ for e in items for a in e.find_all(exp.AggFunc)}
    star = any(isinstance(e, exp.Star) or (e.find(exp.Star) and not e.find(exp.AggFunc))
               for e in items)
    grouped = bool(select.args.get("group"))
    ranked = bool(select.args.get("order")) and bool(select.args.get("limit"))
    shape = question_shape(question)
    out = []
    if shape == "count" and "Count" not in aggregates and not aggregates:
        out.append("the question asks how many, but the query does not count")
    elif shape == "group" and not grouped and not select.find(exp.Window):
        out.append("the question asks for each group, but the query does not group")
    elif shape == "top" and not ranked and not aggregates & {"Max", "Min"}:
        out.append("the question asks for the most or the top, but the query does not rank")
    # an average asked for "per group" is still an average
    if _AVERAGE.search(question or "") and "Avg" not in aggregates and not any(
            isinstance(e, exp.Div) for e in select.find_all(exp.Div)):
        out.append("the question asks for an average, but the query computes none")
    if star and shape in ("count", "avg", "top"):
        out.append("the query returns whole rows for a question about particular values")
    unused = _unused_numbers(question or "", sql)
    if unused:
        out.append(f"the question mentions {' and '.join(unused)}, which the query does not use")
    if _NEGATION.search(QUOTED.sub(" ", question or "")) and not _EXCLUDES.search(sql):
        out.append("the question asks about something absent (never, no, not, without), "
                   "but the query excludes nothing")
    return out


def _numbers(text: str) -> dict[float, str]:
    return {float(m.replace(",", "")): m for m in _NUMBER.findall(text)}


def _unused_numbers(question: str, sql: str) -> list[str]:
    """The question's numbers that appear nowhere in the statement ("more than 5"
    answered by a query with no 5 in it answers another question)."""
    used = {float(n) for n in re.findall(r"\d+(?:\.\d+)?", sql)}
    return [text for value, text in _numbers(QUOTED.sub(" ", question)).items()
            if value not in used]


def unsure_note(reasons: list[str]) -> str:
    """The sentence the answer ends with when there are doubts."""
    return (f"{UNSURE_LEAD} {'; '.join(reasons)}. Check the SQL, rephrase the question, or "
            "pick a stronger model.")
