"""The async surface an async server calls: every blocking operation runs in a worker thread.

In a Jupyter server every user shares one event loop, so a store query, a SQLite busy
wait or a database round trip run on it would stall everyone. `AsyncScope` wraps any
`ServiceAPI` implementation (the in-process scope, or a remote client) and awaits each
call in a worker thread; `chat` is already async-safe and streams straight through.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from .contract import (
    AuditEntry,
    ConnectionInfo,
    ConnectionTest,
    DemoConnection,
    Event,
    Example,
    Grant,
    Health,
    MessageInfo,
    ModelEntry,
    ReadonlyRole,
    ResultPreview,
    SchemaInfo,
    ServiceAPI,
    ThreadInfo,
    ThreadModel,
    UserInfo,
)

if TYPE_CHECKING:
    import pandas as pd

    from ..databases.runs import QueryResult

T = TypeVar("T")


class AsyncScope:
    """`ServiceAPI` with awaitable methods, for event-loop servers."""

    def __init__(self, scope: ServiceAPI) -> None:
        self.scope = scope

    def __repr__(self) -> str:
        return f"AsyncScope({self.scope!r})"

    @property
    def username(self) -> str:
        return self.scope.username

    @property
    def is_admin(self) -> bool:
        return self.scope.is_admin

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(fn, *args, **kwargs)

    # users
    async def me(self) -> UserInfo:
        return await self._run(self.scope.me)

    async def update_me(self, **fields: Any) -> UserInfo:
        return await self._run(self.scope.update_me, **fields)

    async def list_users(self) -> list[UserInfo]:
        return await self._run(self.scope.list_users)

    async def get_user(self, user_id: str) -> UserInfo:
        return await self._run(self.scope.get_user, user_id)

    async def delete_user(self, user_id: str) -> None:
        await self._run(self.scope.delete_user, user_id)

    # connections
    async def list_connections(self) -> list[ConnectionInfo]:
        return await self._run(self.scope.list_connections)

    async def get_connection(self, ref: str) -> ConnectionInfo:
        return await self._run(self.scope.get_connection, ref)

    async def create_connection(self, data: Mapping[str, Any], *,
                                test: bool = False) -> ConnectionInfo:
        return await self._run(self.scope.create_connection, data, test=test)

    async def update_connection(self, ref: str, data: Mapping[str, Any], *,
                                test: bool = False) -> ConnectionInfo:
        return await self._run(self.scope.update_connection, ref, data, test=test)

    async def delete_connection(self, ref: str) -> None:
        await self._run(self.scope.delete_connection, ref)

    async def test_connection(self, ref: str) -> ConnectionTest:
        return await self._run(self.scope.test_connection, ref)

    async def ensure_demo(self, path: str | None = None, name: str = "demo") -> DemoConnection:
        return await self._run(self.scope.ensure_demo, path, name)

    async def schema(self, ref: str, *, refresh: bool = False) -> SchemaInfo:
        return await self._run(self.scope.schema, ref, refresh=refresh)

    async def connection_grants(self, ref: str) -> list[Grant]:
        return await self._run(self.scope.connection_grants, ref)

    async def grant_connection(self, ref: str, *, user: str | None = None,
                               group: str | None = None) -> list[Grant]:
        return await self._run(self.scope.grant_connection, ref, user=user, group=group)

    async def revoke_connection(self, ref: str, *, user: str | None = None,
                                group: str | None = None) -> list[Grant]:
        return await self._run(self.scope.revoke_connection, ref, user=user, group=group)

    async def readonly_role(self, ref: str, *, role: str = "aigis_readonly", apply: bool = False,
                            save_as: str | None = None) -> ReadonlyRole:
        return await self._run(self.scope.readonly_role, ref, role=role, apply=apply,
                               save_as=save_as)

    async def run_sql(self, ref: str, sql: str, *, max_rows: int | None = None,
                      thread_id: str | None = None) -> QueryResult:
        return await self._run(self.scope.run_sql, ref, sql, max_rows=max_rows,
                               thread_id=thread_id)

    # teaching
    async def list_examples(self, ref: str) -> list[Example]:
        return await self._run(self.scope.list_examples, ref)

    async def add_examples(self, ref: str, items: list[Mapping[str, Any]]) -> list[Example]:
        return await self._run(self.scope.add_examples, ref, items)

    async def update_example(self, ref: str, example_id: str,
                             data: Mapping[str, Any]) -> Example:
        return await self._run(self.scope.update_example, ref, example_id, data)

    async def delete_example(self, ref: str, example_id: str) -> None:
        await self._run(self.scope.delete_example, ref, example_id)

    async def verify_turn(self, thread_id: str) -> Example:
        return await self._run(self.scope.verify_turn, thread_id)

    # threads and messages
    async def create_thread(self, title: str | None = None, *, connection: str | None = None,
                            model: str | None = None) -> ThreadInfo:
        return await self._run(self.scope.create_thread, title, connection=connection,
                               model=model)

    async def list_threads(self) -> list[ThreadInfo]:
        return await self._run(self.scope.list_threads)

    async def get_thread(self, thread_id: str) -> ThreadInfo:
        return await self._run(self.scope.get_thread, thread_id)

    async def rename_thread(self, thread_id: str, title: str | None) -> ThreadInfo:
        return await self._run(self.scope.rename_thread, thread_id, title)

    async def delete_thread(self, thread_id: str) -> None:
        await self._run(self.scope.delete_thread, thread_id)

    async def get_messages(self, thread_id: str) -> list[MessageInfo]:
        return await self._run(self.scope.get_messages, thread_id)

    async def set_thread_connection(self, thread_id: str, ref: str | None) -> ThreadInfo:
        return await self._run(self.scope.set_thread_connection, thread_id, ref)

    async def thread_state(self, thread_id: str) -> dict[str, Any]:
        return await self._run(self.scope.thread_state, thread_id)

    # models
    async def list_models(self) -> list[ModelEntry]:
        return await self._run(self.scope.list_models)

    async def get_thread_model(self, thread_id: str) -> ThreadModel:
        return await self._run(self.scope.get_thread_model, thread_id)

    async def set_thread_model(self, thread_id: str, name: str | None) -> ThreadModel:
        return await self._run(self.scope.set_thread_model, thread_id, name)

    # chat
    def chat(self, thread_id: str, text: str, *, connection: str | None = None,
             model: str | None = None, chart: bool = True,
             sql_only: bool = False) -> AsyncIterator[Event]:
        return self.scope.chat(thread_id, text, connection=connection, model=model,
                               chart=chart, sql_only=sql_only)

    async def cancel(self, thread_id: str) -> bool:
        return await self._run(self.scope.cancel, thread_id)

    async def last_result(self, thread_id: str) -> pd.DataFrame | None:
        return await self._run(self.scope.last_result, thread_id)

    async def result_preview(self, thread_id: str) -> ResultPreview | None:
        return await self._run(self.scope.result_preview, thread_id)

    # SQL and audit
    async def audit_log(self, *, limit: int = 100, all_users: bool = False) -> list[AuditEntry]:
        return await self._run(self.scope.audit_log, limit=limit, all_users=all_users)

    async def health(self) -> Health:
        return await self._run(self.scope.health)
