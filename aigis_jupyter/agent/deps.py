"""What the agent may ask of the rest of the core, handed to it with each turn.

The graph reaches the user's database, its schema and the SQL guard only through these
calls, on an object built for the acting user and thread (`service.deps.TurnDeps`): there
is no ambient "current user" for the agent to fall back on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..databases.catalog import SchemaSnapshot
    from ..databases.runs import CancelToken, QueryResult


class AgentDeps(Protocol):
    """One user's data, as one chat turn sees it; every call may block (run it in a thread)."""

    def snapshot(self, connection_id: str) -> SchemaSnapshot:
        """The connection's schema (cached by fingerprint)."""
        ...

    def dialect(self, connection_id: str) -> str:
        """The sqlglot dialect name of the connection (for prompts and the guard)."""
        ...

    def check_sql(self, connection_id: str, sql: str) -> str:
        """The parser layer of the guard alone: the normalised statement, or SQLRefused."""
        ...

    def run_sql(self, connection_id: str, sql: str,
                cancel: CancelToken | None = None) -> QueryResult:
        """Guard, run and audit one statement; a bounded result."""
        ...


__all__ = ["AgentDeps"]
