"""Candidates for a table that refers to itself: "who is Jane Peacock's manager", "which
employees report to Nancy Edwards", "how many people report to Michael Mitchell".

The table's own foreign key (`Employee.ReportsTo` -> `Employee`) joins it to itself under
two names, `e` (the one who reports) and `m` (the one reported to); the name the question
gives filters one side and the rows of the other are the answer. Kept apart from
`shapes.py`, whose queries read each table once.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .linking import label_columns
from .querytext import Query, ident

if TYPE_CHECKING:
    from ..databases.catalog import Table
    from .asked import Asked, Filter
    from .linking import Link

__all__ = ["self_joins"]

#: "report to Nancy Edwards", "managed by ...", "who works under ...": the name is the
#: manager's, the answer their reports.
UNDER = re.compile(r"(?i)\b(?:reports?|reporting|reported)\s+(?:directly\s+)?to\s+|"
                   r"\b(?:managed|supervised|led)\s+by\s+|\bwork(?:s|ing)?\s+(?:under|for)\s+|"
                   r"\b(?:does|do|did)\b.*\b(?:manage|supervise|lead)\b")
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
    if fk is None or len(keys) != 1 or len(names) != 1 or len(filters) != 1:
        return []
    named = names[0]
    text = ask.question  # the cue words outside the value itself ("the Sales Manager")
    for value in re.findall(r"'((?:[^']|'')*)'", named.sql):
        text = re.sub(re.escape(value.replace("''", "'")), " ", text, flags=re.I)
    under, above = UNDER.search(text), ABOVE.search(text)
    if under and (not above or under.start() < above.start()):
        side, other = "m", "e"  # the name is the manager's
    elif above:
        side, other = "e", "m"
    else:
        return []
    qy = Query(link, subject, dialect)
    table = qy.name(subject)

    def col(alias: str, name: str) -> str:
        return f"{alias}.{ident(name, dialect)}"

    cond = named.sql.replace("{}", col(side, named.column.name), 1)
    for c in subject.columns:
        cond = cond.replace("{" + c.name + "}", col(side, c.name))
    shown = "COUNT(*)" if ask.counting else ", ".join(
        col(other, c.name) for c in label_columns(subject))
    sql = (f"SELECT {shown} FROM {table} AS e JOIN {table} AS m "
           f"ON {col('e', fk.columns[0])} = {col('m', keys[0].name)} WHERE {cond}")
    return [sql]
