"""What the agent may ask of the rest of the core, handed to it with each turn.

The graph reaches the user's database, its schema and the SQL guard only through these
calls, on an object built for the acting user and thread (`service.deps.TurnDeps`): there
is no ambient "current user" for the agent to fall back on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from ..databases.catalog import SchemaSnapshot
    from ..databases.engines import ConnectionSpec
    from ..databases.runs import CancelToken, QueryResult
    from ..databases.values import ValueIndex


@dataclass(frozen=True)
class Teaching:
    """What people taught a connection: verified (question, SQL) pairs and its notes."""

    examples: tuple[tuple[str, str], ...] = ()
    notes: str | None = None


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

    def keep(self, connection_id: str, result: QueryResult) -> None:
        """The result the turn shows (one of several it may have run): the thread's last."""
        ...

    def teaching(self, connection_id: str) -> Teaching:
        """The connection's verified queries and notes."""
        ...

    def writable(self, connection_id: str) -> bool:
        """Whether the connection was opened for writing (`allow_write`)."""
        ...

    def values(self, connection_id: str, snap: SchemaSnapshot) -> ValueIndex:
        """The few distinct values of its short text columns (cached by fingerprint)."""
        ...


class SpecDeps:
    """`AgentDeps` over one connection spec, with no store around it: for scripts,
    evaluations and benchmarks that run the agent on a database directly.

    The same calls the service makes (the cached snapshot, the guard, guarded `run_query`,
    the value index), without the audit log; `examples` and `notes` stand in for what the
    store would hold. `ran` lists the statements run, `last` holds the result the turn
    showed and `results` each result by its statement (a turn may run several candidates).
    """

    def __init__(self, spec: ConnectionSpec, *, max_rows: int = 10_000,
                 timeout_s: float = 30.0, examples: tuple[tuple[str, str], ...] = (),
                 notes: str | None = None) -> None:
        from ..databases.engines import EngineCache

        self.spec = spec
        self.cache = EngineCache()
        self.max_rows = max_rows
        self.timeout_s = timeout_s
        self.examples = tuple(examples)
        self.notes = notes
        self.ran: list[str] = []
        self.last: QueryResult | None = None
        self.results: dict[str, QueryResult] = {}  # by statement, since the last clear

    @property
    def engine(self) -> Engine:
        return self.cache.get(self.spec)

    def _check(self, connection_id: str) -> None:
        if connection_id != self.spec.id:
            raise ValueError(f"unexpected connection {connection_id!r}")

    def snapshot(self, connection_id: str) -> SchemaSnapshot:
        from ..databases.schema import snapshot

        self._check(connection_id)
        return snapshot(self.engine, self.spec)

    def dialect(self, connection_id: str) -> str:
        self._check(connection_id)
        return str(self.spec.dialect.sqlglot_dialect or self.spec.db_type)

    def check_sql(self, connection_id: str, sql: str) -> str:
        from ..databases.guard import check_sql

        return check_sql(sql, self.dialect(connection_id), allow_write=self.spec.allow_write,
                         database=self.spec.database)

    def run_sql(self, connection_id: str, sql: str,
                cancel: CancelToken | None = None) -> QueryResult:
        from ..databases.execute import run_query

        self._check(connection_id)
        self.ran.append(sql)
        self.last = run_query(self.engine, self.spec, sql, max_rows=self.max_rows,
                              timeout_s=self.timeout_s, cancel=cancel)
        self.results[sql] = self.last
        return self.last

    def keep(self, connection_id: str, result: QueryResult) -> None:
        self._check(connection_id)
        self.last = result

    def teaching(self, connection_id: str) -> Teaching:
        self._check(connection_id)
        return Teaching(examples=self.examples, notes=self.notes)

    def writable(self, connection_id: str) -> bool:
        self._check(connection_id)
        return bool(self.spec.allow_write)

    def values(self, connection_id: str, snap: SchemaSnapshot) -> ValueIndex:
        from ..databases.values import value_index

        self._check(connection_id)
        return value_index(self.engine, self.spec, snap)

    def close(self) -> None:
        self.cache.dispose_all()


__all__ = ["AgentDeps", "SpecDeps", "Teaching"]
