"""`AgentDeps` for one user's turn: the agent's only way to that user's data and guard."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..agent.deps import Teaching
    from ..databases.catalog import SchemaSnapshot
    from ..databases.runs import CancelToken, QueryResult
    from ..databases.values import ValueIndex
    from .scope import UserScope


class TurnDeps:
    """Built by the scope for each turn and handed to the agent with it.

    Everything acts for `scope`'s user on `thread_id`; there is no ambient user to fall
    back on, so a turn can never read another user's connections.
    """

    def __init__(self, scope: UserScope, thread_id: str) -> None:
        self.scope = scope
        self.thread_id = thread_id

    def snapshot(self, connection_id: str) -> SchemaSnapshot:
        from ..databases.schema import snapshot

        spec = self.scope.connection_spec(connection_id)
        return snapshot(self.scope.service.engines.get(spec), spec)

    def dialect(self, connection_id: str) -> str:
        from ..databases.engines import get_dialect

        return get_dialect(self.scope.get_connection(connection_id)["db_type"]).sqlglot_dialect

    def check_sql(self, connection_id: str, sql: str) -> str:
        from ..databases.guard import check_sql

        conn = self.scope.get_connection(connection_id)
        return check_sql(sql, conn["db_type"], allow_write=conn["allow_write"],
                         database=conn.get("database"))

    def run_sql(self, connection_id: str, sql: str,
                cancel: CancelToken | None = None) -> QueryResult:
        return self.scope.run_sql(connection_id, sql, thread_id=self.thread_id, cancel=cancel)

    def keep(self, connection_id: str, result: QueryResult) -> None:
        self.scope.service.turns.remember(self.scope.user_id, self.thread_id, result)

    def teaching(self, connection_id: str) -> Teaching:
        from ..agent.deps import Teaching

        info = self.scope.get_connection(connection_id)
        examples = tuple((e["question"], e["sql"])
                         for e in self.scope.list_examples(connection_id))
        return Teaching(examples=examples, notes=info.get("notes"))

    def writable(self, connection_id: str) -> bool:
        return bool(self.scope.get_connection(connection_id)["allow_write"])

    def values(self, connection_id: str, snap: SchemaSnapshot) -> ValueIndex:
        from ..databases.values import value_index

        spec = self.scope.connection_spec(connection_id)
        if self.scope.settings.refuse_privileged_logins:  # as for every other statement
            self.scope.service.check_login(spec, self.scope._test_spec)
        return value_index(self.scope.service.engines.get(spec), spec, snap)
