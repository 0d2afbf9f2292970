"""The snapshot types: what a database's catalog says, in a shape every dialect fills.

Kept apart from the catalog readers (in `dialects/`) and the cache (`schema.py`) so that the
agent, the service and the suggestions can use the types without importing a driver.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Column", "ForeignKey", "SchemaSnapshot", "Table"]


@dataclass
class Column:
    name: str
    type: str
    nullable: bool = True
    primary_key: bool = False
    comment: str | None = None


@dataclass
class ForeignKey:
    columns: list[str]
    ref_table: str
    ref_columns: list[str]
    ref_schema: str | None = None
    name: str | None = None


@dataclass
class Table:
    name: str
    schema: str | None
    columns: list[Column]
    foreign_keys: list[ForeignKey] = field(default_factory=list)
    kind: str = "table"  # table | view
    comment: str | None = None

    @property
    def primary_key(self) -> list[str]:
        return [c.name for c in self.columns if c.primary_key]


@dataclass
class SchemaSnapshot:
    dialect: str
    tables: list[Table]
    fingerprint: str
    default_schema: str | None = None
    taken_at: float = field(default_factory=time.time)

    def table(self, name: str, schema: str | None = None) -> Table | None:
        """Find a table by name (case-insensitive), optionally in a given schema."""
        low = name.lower()
        for t in self.tables:
            if t.name.lower() == low and (schema is None or (t.schema or "") == schema):
                return t
        return None

    def qualified(self, t: Table) -> str:
        """The name a query uses: schema-qualified only outside the default schema."""
        if t.schema and t.schema != self.default_schema:
            return f"{t.schema}.{t.name}"
        return t.name

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
