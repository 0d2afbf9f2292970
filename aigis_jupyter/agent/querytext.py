"""Writing a candidate's SQL text: names quoted where they must be, joins along foreign
keys, aggregates named in words. In SQLite's syntax; `shapes.candidates` carries the whole
statement to the connection's dialect with sqlglot.
"""

from __future__ import annotations

import re

from ..databases.catalog import Column, Table
from .linking import Hop, Link, join_path

__all__ = ["Query", "alias", "ident"]


_KEYWORD_TEXT = """select from where group order by limit as and or not null is in on join
table index key values case when then else end desc asc having union all distinct left right
inner outer cross natural default check references primary foreign unique user date time
timestamp"""
_KEYWORDS = frozenset(_KEYWORD_TEXT.split())
_MONEY = re.compile(r"(?i)price|amount|total|cost|revenue|sales?$|value")
_QUANTITY = re.compile(r"(?i)quantity|qty|units?$")


def ident(name: str, dialect: str) -> str:
    """A name as SQLite writes it: quoted when it must be (or when the target engine
    folds unquoted names to lower case and this one has capitals)."""
    plain = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) and name.lower() not in _KEYWORDS
    if plain and not (dialect in ("postgres", "snowflake", "oracle") and name != name.lower()):
        return name
    return '"' + name.replace('"', '""') + '"'


class Query:
    """One query under construction: the tables it reads and how they join."""

    def __init__(self, link: Link, subject: Table, dialect: str) -> None:
        self.link, self.subject, self.dialect = link, subject, dialect
        self.tables: list[Table] = [subject]
        self.joins: list[Hop] = []
        self.ok = True

    def need(self, table: Table) -> None:
        if table in self.tables:
            return
        # "customers who bought Jazz tracks": customer, invoice, line, track, genre
        path = join_path(self.link.snap, self.subject, table, max_hops=4)
        if path is None:
            self.ok = False
            return
        for hop in path:
            if hop.right not in self.tables:
                self.tables.append(hop.right)
                self.joins.append(hop)

    def name(self, t: Table) -> str:
        return ".".join(ident(p, self.dialect) for p in self.link.snap.qualified(t).split("."))

    def col(self, t: Table, c: Column | str) -> str:
        """Always qualified; `finish` drops the table when the query reads one table."""
        self.need(t)
        cname = c if isinstance(c, str) else c.name
        return f"{ident(t.name, self.dialect)}.{ident(cname, self.dialect)}"

    def sum_of(self, t: Table, c: Column) -> str:
        """`SUM` of a column, kept from counting a row once per row of a table joined
        below it: "sales per genre" joins invoices through their lines, so each invoice's
        total would repeat per line; the lines' own price (times quantity) is summed then."""
        col = self.col(t, c)
        if not _MONEY.search(c.name):
            return f"SUM({col})"
        for child in self.tables:
            if child is t or not any(fk.ref_table == t.name for fk in child.foreign_keys):
                continue
            keys = {k for fk in child.foreign_keys for k in fk.columns}
            own = [x for x in child.columns if not x.primary_key and x.name not in keys]
            price = next((x for x in own if _MONEY.search(x.name)), None)
            qty = next((x for x in own if _QUANTITY.search(x.name)), None)
            if price is not None:
                line = self.col(child, price)
                return f"SUM({line} * {self.col(child, qty)})" if qty else f"SUM({line})"
        return f"SUM({col})"

    def units(self, t: Table) -> str:
        """How many things rows of `t` record: the sum of its quantity column if it has
        one ("units sold"), else its rows."""
        self.need(t)
        qty = next((c for c in t.columns if _QUANTITY.search(c.name)), None)
        return f"SUM({self.col(t, qty)})" if qty is not None else "COUNT(*)"

    def source(self) -> str:
        out = self.name(self.subject)
        for hop in self.joins:
            on = " AND ".join(
                f"{ident(hop.left.name, self.dialect)}.{ident(a, self.dialect)} = "
                f"{ident(hop.right.name, self.dialect)}.{ident(b, self.dialect)}"
                for a, b in zip(hop.left_cols, hop.right_cols, strict=False))
            out += f" JOIN {self.name(hop.right)} ON {on}"
        return out

    def finish(self, sql: str) -> str:
        """A query over one table names its columns bare."""
        if self.joins:
            return sql
        return sql.replace(ident(self.subject.name, self.dialect) + ".", "")


# --------------------------------------------------------------------------- question parts


_AGG_NAME = {"COUNT": "count", "SUM": "total", "AVG": "average", "MAX": "max", "MIN": "min"}
_AGG = re.compile(r"^(COUNT|SUM|AVG|MAX|MIN)\((DISTINCT\s+)?(?:.*\.)?\"?([\w ]+?|\*)\"?\)$")


def alias(expr: str, dialect: str) -> str:
    """`SUM(Invoice.Total)` -> `SUM(Invoice.Total) AS total_total`: a result column named
    in words, for the table, the chart and the answer."""
    if re.match(r"^SUM\([^()]*\s\*\s[^()]*\)$", expr):  # a line's price times quantity
        return f"{expr} AS total_amount"
    m = _AGG.match(expr)
    if not m:
        return expr
    func, distinct, col = m.groups()
    if col == "*":
        return f"{expr} AS count"
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", col).replace(" ", "_").lower()
    head = "distinct" if distinct else _AGG_NAME[func]
    name = words if words.startswith(head) else f"{head}_{words}"
    return f"{expr} AS {ident(name, dialect)}"
