"""Candidates built on how tables refer to each other, beyond joining along a path.

A table that refers to itself: "who is Jane Peacock's manager", "which employees report to
Nancy Edwards". Its own foreign key (`Employee.ReportsTo` -> `Employee`) joins it to itself
under two names, `e` (the one who reports) and `m` (the one reported to); the name the
question gives filters one side and the rows of the other are the answer; with no name,
each row beside the one it points at ("every employee and their manager"), the rows
others point at ("which employees manage others"), or those rows ranked or counted by how
many point at them ("who manages the most employees").

Rows that nothing refers to: "tracks never sold", "artists with no albums". The table
asked about keeps the rows whose key no row of a table referring to it holds; or, when it
refers to the table named ("customers with no support rep"), the rows whose reference is
empty. "Never sold" looks for the lines of a sale, however many tables away ("genres never
sold": no line's track is of the genre).

Kept apart from `shapes.py`, whose queries read each table once along a join path.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .linking import label_columns
from .querytext import Query, ident

if TYPE_CHECKING:
    from ..databases.catalog import Column, Table
    from .asked import Asked
    from .filters import Filter
    from .linking import Link

__all__ = ["NEVER", "SELF_JOIN", "absences", "empty_references", "referring", "sale_lines",
           "self_joins", "sold_in"]

#: The prior of a self-join: a question about a table's own hierarchy, with its cue words,
#: is surely about it.
SELF_JOIN = 1.6
#: "never sold", "no albums", "without orders": rows that nothing refers to
NEVER = re.compile(r"\b(never|no(?!\s+(?:duplicate|repeat|double))|without|"
                   r"not\s+(?:\w+\s+){0,3}?any|none\s+of|not\s+in\s+a)\b")
#: Where a sale is recorded: "never sold" looks for the lines of an order or invoice.
SOLD_IN = re.compile(r"(?i)line|item|order|sale|purchase")
SOLD = re.compile(r"\b(sold|bought|purchased|ordered|sell|buy)\b")

#: "report to Nancy Edwards", "managed by ...", "who works under ...": the name is the
#: manager's, the answer their reports.
UNDER = re.compile(r"(?i)\b(?:reports?|reporting|reported)\s+(?:directly\s+)?to\s+|"
                   r"\b(?:managed|supervised|led)\s+by\s+|\bwork(?:s|ing)?\s+(?:under|for)\s+|"
                   r"\b(?:does|do|did)\b.*\b(?:manage|supervise|lead)\b")
#: "which employees manage others", "how many staff supervise someone": those pointed at.
MANAGES = re.compile(r"\b(?:manage|manages|supervise|supervises|lead|leads)\s+(?:other|others|"
                     r"another|someone|somebody|anyone|any|at\s+least\s+one|a\s+team|people)\b|"
                     r"\bhave\s+(?:direct\s+)?reports\b")
#: "who manages the most employees", "reports per manager": each row by those under it.
LEADS = re.compile(r"\b(?:manages|manage|supervises|supervise|leads|oversees|oversee)\b|"
                   r"\b(?:direct\s+)?reports\b")
GROUPS = re.compile(r"\b(?:each|per|every)\s+(?:manager|boss|supervisor|lead)\b")
#: "Jane Peacock's manager", "who does Jane report to": the name is the report's.
ABOVE = re.compile(r"(?i)\b(manager|boss|supervisor|superior)\b|\breports?\s+to\s*\??\s*$|"
                   r"\bwho\s+(?:manages|supervises|leads)\b")


def self_joins(ask: Asked, link: Link, subject: Table, filters: list[Filter],
               dialect: str) -> list[str]:
    """The query over `subject` joined to itself that the question asks, if it asks one."""
    keys = [c for c in subject.columns if c.primary_key]
    fk = next((fk for fk in subject.foreign_keys if fk.ref_table == subject.name
               and len(fk.columns) == 1), None)
    names = [f for f in filters if f.value and f.table is subject]
    if fk is None or len(keys) != 1:
        return []
    qy = Query(link, subject, dialect)
    table = qy.name(subject)

    def col(alias: str, name: str) -> str:
        return f"{alias}.{ident(name, dialect)}"

    on = f"{col('e', fk.columns[0])} = {col('m', keys[0].name)}"
    if not filters and ((LEADS.search(ask.q) and ask.most) or (
            GROUPS.search(ask.q) and ask.counting)):
        # "who manages the most employees", "how many reports does each manager have"
        shown = ", ".join(col("m", c.name) for c in label_columns(subject))
        grouped = f"FROM {table} AS e JOIN {table} AS m ON {on} GROUP BY {col('m', keys[0].name)}"
        return [f"SELECT {shown} {grouped} ORDER BY COUNT(*) {ask.direction} "
                f"LIMIT {ask.limit or 1}" if ask.most else f"SELECT {shown}, COUNT(*) {grouped}"]
    if not filters and MANAGES.search(ask.q) and not NEVER.search(ask.q):
        # "which employees manage other employees": the rows others point at
        inner = f"SELECT {col('x', fk.columns[0])} FROM {table} AS x"
        shown = "COUNT(*)" if ask.counting else ", ".join(
            col("e", c.name) for c in label_columns(subject))
        return [f"SELECT {shown} FROM {table} AS e WHERE {col('e', keys[0].name)} IN ({inner})"]
    if not filters and not ask.counting and ABOVE.search(ask.question) and not NEVER.search(
            ask.q):
        # "each employee with their manager": every row beside the row it points at
        named = {m.column.name: m.column for m in link.columns if m.table is subject
                 and m.score >= 0.9 and m.column is not None and not m.column.primary_key}
        cols = list(named.values()) or label_columns(subject)
        shown = ", ".join(col(a, c.name) for a in ("e", "m") for c in cols)
        return [f"SELECT {shown} FROM {table} AS e JOIN {table} AS m ON {on}"]
    if len(names) != 1 or len(filters) != 1:
        return []
    named = names[0]
    text = ask.question  # the cue words outside the value itself ("the Sales Manager")
    for value in re.findall(r"'((?:[^']|'')*)'", named.sql):
        text = re.sub(re.escape(value.replace("''", "'")), " ", text, flags=re.I)
    under, above = UNDER.search(text), ABOVE.search(text)
    if under and (not above or under.start() <= above.start()):
        side, other = "m", "e"  # the name is the manager's
    elif above:
        side, other = "e", "m"
    else:
        return []
    cond = named.render(lambda c: col(side, c.name))
    shown = "COUNT(*)" if ask.counting else ", ".join(
        col(other, c.name) for c in label_columns(subject))
    return [f"SELECT {shown} FROM {table} AS e JOIN {table} AS m ON {on} WHERE {cond}"]


def referring(ask: Asked, link: Link, subject: Table) -> list[tuple[Table, str, str]]:
    """(table, its column, `subject`'s key) for each table the question names (or, for
    "sold", that records sales) whose one-column foreign key points at `subject`."""
    keys = [c for c in subject.columns if c.primary_key]
    if len(keys) != 1:
        return []
    named = {id(m.table): m.table for m in [*link.tables, *link.columns]
             if m.score >= 0.6 and m.table is not subject}
    if SOLD.search(ask.q):
        named.update({id(t): t for t in link.snap.tables if SOLD_IN.search(t.name)})
    out = []
    # "employees with no one reporting to them": the table's own reference to itself
    for m in link.columns:
        if m.table is subject and m.score >= 0.6 and m.column is not None and any(
                fk.ref_table == subject.name and fk.columns == [m.column.name]
                for fk in subject.foreign_keys):
            out.append((subject, m.column.name, keys[0].name))
            break
    # "playlists with no tracks": the table linking the two refers to the subject
    named.update({id(t): t for t in link.snap.tables for n in list(named.values())
                  if {f.ref_table for f in t.foreign_keys} >= {subject.name, n.name}})
    for child in named.values():
        fk = next((fk for fk in child.foreign_keys if fk.ref_table == subject.name
                   and len(fk.columns) == 1), None)
        if fk is not None:
            out.append((child, fk.columns[0], keys[0].name))
    return out


def empty_references(ask: Asked, link: Link, subject: Table) -> list[Column]:
    """`subject`'s one-column nullable references to a table the question names (to itself
    when it asks about a manager): "customers with no support rep", "orders not handled by
    any sales rep", "employees with no manager" are the rows where it is empty."""
    named = {m.table.name for m in link.tables if m.table is not subject}
    if ABOVE.search(ask.question):
        named.add(subject.name)
    by_name = {c.name: c for c in subject.columns}
    refs = [by_name.get(fk.columns[0]) for fk in subject.foreign_keys
            if len(fk.columns) == 1 and fk.ref_table in named]
    return [c for c in refs if c is not None and c.nullable]


def absences(ask: Asked, link: Link, subject: Table, qy: Query
             ) -> list[tuple[str, float, tuple[str, str] | None]]:
    """(condition, prior, the referring column not to show) for each way a row of `subject`
    can have nothing: no row of a table referring to it points at it (a table's reference
    to itself, named by its column, first), or its own reference to the table named is
    empty."""
    out: list[tuple[str, float, tuple[str, str] | None]] = []
    refs = referring(ask, link, subject)
    for child, ref, key in refs:
        col = ident(ref, qy.dialect)
        out.append((f"{qy.col(subject, key)} NOT IN (SELECT {col} FROM {qy.name(child)} "
                    f"WHERE {col} IS NOT NULL)", 1.1 if child is subject else 1.05,
                    (child.name, ref)))
    out += [(f"{qy.col(subject, c)} IS NULL", 1.08, None)
            for c in empty_references(ask, link, subject)]
    keys = [c for c in subject.columns if c.primary_key]
    if SOLD.search(ask.q) and len(keys) == 1 and not any(SOLD_IN.search(c.name)
                                                         for c, _, _ in refs):
        for sale in sorted((t for t in link.snap.tables if SOLD_IN.search(t.name)),
                           key=lambda t: not re.search(r"(?i)line|item", t.name)):
            sold = Query(link, sale, qy.dialect)  # "genres never sold": their tracks' lines
            sold.need(subject)
            if sold.ok and len(sold.joins) > 1:
                last = sold.joins.pop()  # the table pointing at `subject` holds the key
                key = sold.col(last.left, last.left_cols[0])
                out.append((f"{qy.col(subject, keys[0])} NOT IN (SELECT {key} FROM "
                            f"{sold.source()} WHERE {key} IS NOT NULL)", 1.05, None))
                break
    return out


def sale_lines(ask: Asked, link: Link, subject: Table) -> Table | None:
    """"How many tracks have been sold", "tracks sold per genre": the table recording sales
    whose rows point at `subject` (each a sale of one), when the question counts sales."""
    return sold_in(ask, link, subject) if ask.counting else None


def sold_in(ask: Asked, link: Link, subject: Table) -> Table | None:
    """The table recording sales of `subject`'s rows when the question speaks of sales
    ("the genre with the most tracks sold" ranks by its lines)."""
    if not SOLD.search(ask.q) or NEVER.search(ask.q):
        return None  # "never sold" counts what has no sale
    return next((child for child, _, _ in referring(ask, link, subject)
                 if child is not subject and SOLD_IN.search(child.name)), None)
