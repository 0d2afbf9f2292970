"""The contract between the core and every door: the shapes that cross it, and one Protocol.

Everything a door (magics, chat widget, CLI, REST handlers, the hub's remote client) may
send or receive is typed here, so a door written against `ServiceAPI` works the same on
the in-process scope (`service.scope.UserScope`) and on the hub's remote client over HTTP.

Results across processes: a turn's full DataFrame stays in the process that ran the
turn (`last_result` there); every process can read the stored preview of the last result
(`result_preview`, from the thread's last assistant message) and learn which process holds
the full frame (`ResultPreview.process`). The hub serves that frame as Apache Arrow from
the process that has it (its result route).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

# pydantic reads these shapes for the OpenAPI document: it needs typing_extensions' TypedDict
# before Python 3.12
from typing_extensions import NotRequired, TypedDict

if TYPE_CHECKING:
    import pandas as pd

    from ..databases.runs import QueryResult

# --- objects ----------------------------------------------------------------------------


class Action(TypedDict, total=False):
    """A next step a door renders in its own terms (see `errors.ACTION_KINDS`)."""

    kind: str
    choices: list[str]
    name: str


class ErrorInfo(TypedDict, total=False):
    message: str
    reason: str
    action: Action


class UserInfo(TypedDict):
    id: str
    username: str
    display_name: str | None
    email: str | None
    is_admin: bool
    created_at: str | None
    updated_at: str | None


class ConnectionInfo(TypedDict):
    """A connection as the outside sees it: never the password, only whether one is set.
    `warnings` is there when the connection was tested on the way in."""

    id: str
    name: str
    db_type: str
    host: str | None
    port: int | None
    database: str | None
    username: str | None
    has_password: bool
    allow_write: bool
    options: dict[str, str]
    notes: str | None  # what the assistant should know about this data (business terms)
    shared: bool  # shared with you by its owner: usable, its login details hidden
    created_at: str | None
    updated_at: str | None
    warnings: NotRequired[list[Notice]]


class Example(TypedDict):
    """A verified query: a question and the SQL a person confirmed answers it."""

    id: str
    connection_id: str
    question: str
    sql: str
    created_at: str | None
    updated_at: str | None


class Grant(TypedDict):
    """A connection shared with a user or a hub group."""

    kind: Literal["user", "group"]
    name: str
    created_at: str | None


#: The columns a listing of connections shows, in every door.
CONNECTION_COLUMNS = ("name", "db_type", "host", "port", "database", "username", "has_password",
                      "allow_write")


class DemoConnection(ConnectionInfo):
    status: Literal["created", "unchanged", "updated"]


class Notice(TypedDict):
    """Something the user should fix although it works (a privileged login, say)."""

    kind: str
    message: str
    action: Action


class ConnectionTest(TypedDict):
    ok: bool
    db_type: str
    server_version: str
    latency_ms: float
    warnings: list[Notice]


class ReadonlyRole(TypedDict):
    role: str
    sql: list[str]  # the statements; a generated password is never shown
    applied: bool
    connection: ConnectionInfo | None  # the saved connection that logs in as the role


class ColumnInfo(TypedDict):
    name: str
    type: str
    nullable: bool
    primary_key: bool
    comment: str | None


class ForeignKeyInfo(TypedDict):
    columns: list[str]
    ref_table: str
    ref_columns: list[str]
    ref_schema: str | None
    name: str | None


class TableInfo(TypedDict):
    name: str
    schema: str | None
    qualified: str  # how SQL names it on this connection
    kind: Literal["table", "view"]
    comment: str | None
    columns: list[ColumnInfo]
    foreign_keys: list[ForeignKeyInfo]
    rows: int | None  # None where the server has no count or estimate yet


class SchemaInfo(TypedDict):
    dialect: str
    default_schema: str | None
    rows_exact: bool  # False: `rows` are the server's statistics estimates
    tables: list[TableInfo]


class ThreadInfo(TypedDict):
    id: str
    title: str | None
    connection_id: str | None
    connection_name: str | None
    model_name: str | None
    created_at: str | None
    updated_at: str | None
    running: bool


class MessageInfo(TypedDict):
    id: int
    thread_id: str
    role: str
    content: str
    payload: dict[str, Any] | None
    created_at: str | None


class ModelEntry(TypedDict):
    name: str
    provider: str | None
    aliases: list[str]
    available: bool
    reason: str | None
    supports_tools: bool | None
    action: Action | None


class ThreadModel(TypedDict):
    thread_id: str
    model: str | None
    models: list[ModelEntry]
    available: dict[str, bool]


class AuditEntry(TypedDict):
    id: int
    created_at: str | None
    username: str
    connection_id: str | None
    connection_name: str | None
    db_type: str | None
    thread_id: str | None
    sql: str
    status: str
    row_count: int | None
    duration_ms: float | None
    error: str | None


class Health(TypedDict):
    ok: bool
    version: str
    store: dict[str, Any]
    vault: dict[str, str]


class ResultPreview(TypedDict):
    """The last result of a thread as stored: readable from any process."""

    thread_id: str
    sql: str | None
    columns: list[str]
    rows: list[list[Any]]
    row_count: int
    truncated: bool
    process: str | None  # where the full DataFrame lives (`host:pid`), while that process runs
    connection_id: NotRequired[str | None]  # the connection it ran on (to run it again)


# --- the event stream (DESIGN.md) -----------------------------------------------------------


class StatusEvent(TypedDict):
    type: Literal["status"]
    phase: Literal["schema", "sql", "executing", "charting", "answering"]


class SqlEvent(TypedDict, total=False):
    type: Literal["sql"]
    sql: str
    verified: bool


class TableEvent(TypedDict):
    type: Literal["table"]
    columns: list[str]
    rows: list[list[Any]]
    row_count: int
    truncated: bool


class ChartEvent(TypedDict):
    type: Literal["chart"]
    spec: dict[str, Any]


class ToolResultEvent(TypedDict):
    type: Literal["tool_result"]
    content: Any


class ChunkEvent(TypedDict):
    type: Literal["chunk"]
    content: str


class ErrorEvent(TypedDict, total=False):
    type: Literal["error"]
    message: str
    reason: str
    action: Action


class SuggestionsEvent(TypedDict):
    type: Literal["suggestions"]
    suggestions: list[str]


class EndEvent(TypedDict):
    type: Literal["end"]
    full_response: str


Event = (StatusEvent | SqlEvent | TableEvent | ChartEvent | ToolResultEvent | ChunkEvent
         | ErrorEvent | SuggestionsEvent | EndEvent)


@dataclass
class TurnRecord:
    """One turn folded from its events: what a door shows and what the store keeps.

    The one place that reads the stream's meaning: the service builds the stored message
    from it, and the notebook door renders it.
    """

    phase: str | None = None
    answer: str = ""
    sql: str | None = None
    verified: bool = False
    table: dict[str, Any] | None = None
    chart: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    suggestions: list[str] = field(default_factory=list)
    done: bool = False
    events: list[Mapping[str, Any]] = field(default_factory=list)

    def feed(self, event: Mapping[str, Any]) -> None:
        """Fold one event in."""
        self.events.append(event)
        kind = event.get("type")
        if kind == "status":
            self.phase = event.get("phase")
        elif kind == "chunk":
            self.answer += str(event.get("content") or "")
        elif kind == "sql":
            self.sql = event.get("sql")
            self.verified = bool(event.get("verified"))
        elif kind == "table":
            self.table = {k: event.get(k) for k in ("columns", "rows", "row_count", "truncated")}
        elif kind == "chart":
            self.chart = event.get("spec")
        elif kind == "error":
            self.error = {k: event[k] for k in ("message", "reason", "action") if event.get(k)}
        elif kind == "suggestions":
            self.suggestions = list(event.get("suggestions") or [])
        elif kind == "end":
            self.done = True
            full = event.get("full_response")
            if full and not self.answer:
                self.answer = str(full)

    @property
    def has_content(self) -> bool:
        return bool(self.answer or self.sql or self.table or self.chart or self.error)

    def payload(self) -> dict[str, Any]:
        """What the assistant message stores beside its text."""
        out: dict[str, Any] = {}
        if self.sql:
            out["sql"] = self.sql
            if self.verified:
                out["verified"] = True
        for key in ("table", "chart", "error"):
            value = getattr(self, key)
            if value:
                out[key] = value
        if self.suggestions:
            out["suggestions"] = list(self.suggestions)
        return out


# --- the operations ---------------------------------------------------------------------


@runtime_checkable
class ServiceAPI(Protocol):
    """Every operation a door may call, acting for one user.

    Methods are synchronous and may block (store, database); `chat` is an async stream
    whose blocking work runs off the event loop. Async servers use `service.aio.AsyncScope`,
    which wraps any implementation of this protocol.
    """

    @property
    def username(self) -> str: ...

    @property
    def is_admin(self) -> bool: ...

    # users
    def me(self) -> UserInfo: ...
    def update_me(self, **fields: Any) -> UserInfo: ...
    def list_users(self) -> list[UserInfo]: ...
    def get_user(self, user_id: str) -> UserInfo: ...
    def delete_user(self, user_id: str) -> None: ...

    # connections
    def list_connections(self) -> list[ConnectionInfo]: ...
    def get_connection(self, ref: str) -> ConnectionInfo: ...
    def create_connection(self, data: Mapping[str, Any], *,
                          test: bool = False) -> ConnectionInfo: ...
    def update_connection(self, ref: str, data: Mapping[str, Any], *,
                          test: bool = False) -> ConnectionInfo: ...
    def delete_connection(self, ref: str) -> None: ...
    def test_connection(self, ref: str) -> ConnectionTest: ...
    def ensure_demo(self, path: str | None = None, name: str = "demo") -> DemoConnection: ...
    def schema(self, ref: str, *, refresh: bool = False) -> SchemaInfo: ...
    def connection_grants(self, ref: str) -> list[Grant]: ...
    def grant_connection(self, ref: str, *, user: str | None = None,
                         group: str | None = None) -> list[Grant]: ...
    def revoke_connection(self, ref: str, *, user: str | None = None,
                          group: str | None = None) -> list[Grant]: ...
    def readonly_role(self, ref: str, *, role: str = "aigis_readonly", apply: bool = False,
                      save_as: str | None = None) -> ReadonlyRole: ...
    def run_sql(self, ref: str, sql: str, *, max_rows: int | None = None,
                thread_id: str | None = None) -> QueryResult: ...

    # teaching a connection (verified queries; its notes are a connection field)
    def list_examples(self, ref: str) -> list[Example]: ...
    def add_examples(self, ref: str, items: list[Mapping[str, Any]]) -> list[Example]: ...
    def update_example(self, ref: str, example_id: str,
                       data: Mapping[str, Any]) -> Example: ...
    def delete_example(self, ref: str, example_id: str) -> None: ...
    def verify_turn(self, thread_id: str) -> Example: ...

    # threads and messages
    def create_thread(self, title: str | None = None, *, connection: str | None = None,
                      model: str | None = None) -> ThreadInfo: ...
    def list_threads(self) -> list[ThreadInfo]: ...
    def get_thread(self, thread_id: str) -> ThreadInfo: ...
    def rename_thread(self, thread_id: str, title: str | None) -> ThreadInfo: ...
    def delete_thread(self, thread_id: str) -> None: ...
    def get_messages(self, thread_id: str) -> list[MessageInfo]: ...
    def set_thread_connection(self, thread_id: str, ref: str | None) -> ThreadInfo: ...
    def thread_state(self, thread_id: str) -> dict[str, Any]: ...

    # models
    def list_models(self) -> list[ModelEntry]: ...
    def get_thread_model(self, thread_id: str) -> ThreadModel: ...
    def set_thread_model(self, thread_id: str, name: str | None) -> ThreadModel: ...

    # chat
    def chat(self, thread_id: str, text: str, *, connection: str | None = None,
             model: str | None = None, chart: bool = True,
             sql_only: bool = False) -> AsyncIterator[Event]: ...
    def cancel(self, thread_id: str) -> bool: ...
    def last_result(self, thread_id: str) -> pd.DataFrame | None: ...
    def result_preview(self, thread_id: str) -> ResultPreview | None: ...

    # SQL and audit
    def audit_log(self, *, limit: int = 100, all_users: bool = False) -> list[AuditEntry]: ...
    def health(self) -> Health: ...


__all__ = [
    "CONNECTION_COLUMNS",
    "Action",
    "AuditEntry",
    "ChartEvent",
    "ChunkEvent",
    "ColumnInfo",
    "ConnectionInfo",
    "ConnectionTest",
    "DemoConnection",
    "EndEvent",
    "ErrorEvent",
    "ErrorInfo",
    "Event",
    "Example",
    "ForeignKeyInfo",
    "Health",
    "MessageInfo",
    "ModelEntry",
    "ResultPreview",
    "SchemaInfo",
    "ServiceAPI",
    "SqlEvent",
    "StatusEvent",
    "SuggestionsEvent",
    "TableEvent",
    "TableInfo",
    "ThreadInfo",
    "ThreadModel",
    "ToolResultEvent",
    "TurnRecord",
    "UserInfo",
]
