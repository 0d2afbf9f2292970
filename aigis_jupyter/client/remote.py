"""The remote client (hub mode): `ServiceAPI` over the service's REST + SSE API.

A kernel or a single-user server in JupyterHub holds no master key and no store
credentials: it calls the hub's Aigis service with the user's own hub token, and gets back
the same shapes and the same errors as the in-process scope (a DataFrame travels as Apache
Arrow). A service that does not answer (restarting, say) is a `ServiceUnavailable` that says
so; the next call simply tries again.
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ..errors import AigisError, NotFound, ServiceUnavailable, error_from

if TYPE_CHECKING:
    import httpx
    import pandas as pd

    from ..databases.runs import QueryResult
    from ..service.contract import (
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
        ThreadInfo,
        ThreadModel,
        UserInfo,
    )

ARROW = "application/vnd.apache.arrow.stream"
#: Seconds to wait for a plain call (a chat stream has no overall limit: it ends itself).
TIMEOUT_S = 60.0


def _path(*parts: str) -> str:
    return "/".join(quote(str(p), safe="") for p in parts)


def frame_from_arrow(data: bytes) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A DataFrame and the `aigis` metadata of an Arrow IPC stream."""
    import pyarrow as pa

    table = pa.ipc.open_stream(io.BytesIO(data)).read_all()
    meta = json.loads((table.schema.metadata or {}).get(b"aigis", b"{}"))
    return table.to_pandas(), meta


class RemoteScope:
    """One user's operations on a remote Aigis service (`ServiceAPI`)."""

    def __init__(self, base_url: str, token: str, *, timeout: float = TIMEOUT_S) -> None:
        import httpx

        self.base_url = base_url.rstrip("/") + "/"
        self._headers = {"Authorization": f"token {token}"}
        self._timeout = timeout
        self._http = httpx.Client(base_url=self.base_url, headers=self._headers,
                                  timeout=timeout)
        self._me: UserInfo | None = None

    def __repr__(self) -> str:  # never the token
        return f"RemoteScope({self.base_url!r})"

    # -- transport -----------------------------------------------------------------------
    def _call(self, method: str, path: str, body: Any = None, *,
              params: Mapping[str, Any] | None = None, accept: str | None = None) -> Any:
        import httpx

        headers = {"Accept": accept} if accept else None
        try:
            resp = self._http.request(method, path, params=params, headers=headers,
                                      content=None if body is None else json.dumps(body))
        except httpx.TransportError as exc:
            raise self._down(exc) from None
        return self._answer(resp, raw=accept == ARROW)

    def _down(self, exc: Exception) -> ServiceUnavailable:
        return ServiceUnavailable(
            f"The Aigis service at {self.base_url} is not answering ({type(exc).__name__}); "
            "it may be restarting. Try again in a moment.", action={"kind": "retry"})

    @staticmethod
    def _answer(resp: httpx.Response, *, raw: bool = False) -> Any:
        if resp.status_code >= 400:
            try:
                body = resp.json()
            except ValueError:
                body = {"message": resp.text[:300] or resp.reason_phrase}
            if resp.status_code in (502, 503, 504) and "reason" not in body:
                body["reason"] = "service_unavailable"
            raise error_from(resp.status_code, body if isinstance(body, dict) else {})
        if raw:
            return resp.content
        return resp.json() if resp.content else None

    # -- identity ------------------------------------------------------------------------
    @property
    def username(self) -> str:
        return (self._me or self.me())["username"]

    @property
    def is_admin(self) -> bool:
        return bool((self._me or self.me())["is_admin"])

    def me(self) -> UserInfo:
        self._me = self._call("GET", "auth/me")
        return self._me  # type: ignore[return-value]

    def update_me(self, **fields: Any) -> UserInfo:
        self._me = self._call("PUT", "auth/me", fields)
        return self._me  # type: ignore[return-value]

    def list_users(self) -> list[UserInfo]:
        return self._call("GET", "auth/users")

    def get_user(self, user_id: str) -> UserInfo:
        return self._call("GET", _path("auth", "users", user_id))

    def delete_user(self, user_id: str) -> None:
        self._call("DELETE", _path("auth", "users", user_id))

    # -- connections ---------------------------------------------------------------------
    def list_connections(self) -> list[ConnectionInfo]:
        return self._call("GET", "connections")

    def get_connection(self, ref: str) -> ConnectionInfo:
        return self._call("GET", _path("connections", ref))

    def create_connection(self, data: Mapping[str, Any], *,
                          test: bool = False) -> ConnectionInfo:
        return self._call("POST", "connections", dict(data), params={"test": str(test)})

    def update_connection(self, ref: str, data: Mapping[str, Any], *,
                          test: bool = False) -> ConnectionInfo:
        return self._call("PUT", _path("connections", ref), dict(data),
                          params={"test": str(test)})

    def delete_connection(self, ref: str) -> None:
        self._call("DELETE", _path("connections", ref))

    def test_connection(self, ref: str) -> ConnectionTest:
        return self._call("POST", _path("connections", ref, "test"), {})

    def ensure_demo(self, path: str | None = None, name: str = "demo") -> DemoConnection:
        if path:
            raise AigisError("The demo database lives beside the shared service; its path is "
                             "the service's to choose.")
        return self._call("POST", "demo", {"name": name})

    def schema(self, ref: str, *, refresh: bool = False) -> SchemaInfo:
        return self._call("GET", _path("connections", ref, "schema"),
                          params={"refresh": str(refresh)})

    def readonly_role(self, ref: str, *, role: str = "aigis_readonly", apply: bool = False,
                      save_as: str | None = None) -> ReadonlyRole:
        return self._call("POST", _path("connections", ref, "readonly-role"),
                          {"role": role, "apply": apply, "save_as": save_as})

    def connection_grants(self, ref: str) -> list[Grant]:
        return self._call("GET", _path("connections", ref, "grants"))

    def grant_connection(self, ref: str, *, user: str | None = None,
                         group: str | None = None) -> list[Grant]:
        return self._call("POST", _path("connections", ref, "grants"),
                          {"user": user, "group": group})

    def revoke_connection(self, ref: str, *, user: str | None = None,
                          group: str | None = None) -> list[Grant]:
        return self._call("DELETE", _path("connections", ref, "grants"),
                          params={k: v for k, v in (("user", user), ("group", group)) if v})

    def run_sql(self, ref: str, sql: str, *, max_rows: int | None = None,
                thread_id: str | None = None) -> QueryResult:
        from ..databases.runs import QueryResult

        data = self._call("POST", _path("connections", ref, "query"),
                          {"sql": sql, "max_rows": max_rows, "thread_id": thread_id},
                          accept=ARROW)
        df, meta = frame_from_arrow(data)
        return QueryResult(sql=str(meta.get("sql") or sql), columns=[str(c) for c in df.columns],
                           data=df, row_count=len(df), truncated=bool(meta.get("truncated")),
                           duration_ms=float(meta.get("duration_ms") or 0.0))

    # -- teaching ------------------------------------------------------------------------
    def list_examples(self, ref: str) -> list[Example]:
        return self._call("GET", _path("connections", ref, "examples"))

    def add_examples(self, ref: str, items: list[Mapping[str, Any]]) -> list[Example]:
        return self._call("POST", _path("connections", ref, "examples", "import"),
                          {"examples": [dict(i) for i in items]})

    def update_example(self, ref: str, example_id: str,
                       data: Mapping[str, Any]) -> Example:
        return self._call("PUT", _path("connections", ref, "examples", example_id), dict(data))

    def delete_example(self, ref: str, example_id: str) -> None:
        self._call("DELETE", _path("connections", ref, "examples", example_id))

    def verify_turn(self, thread_id: str) -> Example:
        return self._call("POST", _path("chat", thread_id, "verify"), {})

    # -- threads -------------------------------------------------------------------------
    def create_thread(self, title: str | None = None, *, connection: str | None = None,
                      model: str | None = None) -> ThreadInfo:
        out = self._call("POST", "chat/thread",
                         {"title": title, "connection": connection, "model": model})
        out.pop("thread_id", None)
        return out

    def list_threads(self) -> list[ThreadInfo]:
        return self._call("GET", "chat/threads")

    def get_thread(self, thread_id: str) -> ThreadInfo:
        for t in self.list_threads():
            if t["id"] == thread_id:
                return t
        raise NotFound(f"You have no chat thread {thread_id!r}.", action={"kind": "new_thread"})

    def rename_thread(self, thread_id: str, title: str | None) -> ThreadInfo:
        return self._call("PUT", _path("chat", thread_id), {"title": title})

    def delete_thread(self, thread_id: str) -> None:
        self._call("DELETE", _path("chat", thread_id))

    def get_messages(self, thread_id: str) -> list[MessageInfo]:
        return self._call("GET", _path("chat", thread_id))

    def set_thread_connection(self, thread_id: str, ref: str | None) -> ThreadInfo:
        return self._call("POST", _path("chat", thread_id, "connection"),
                          {"user_connection_id": ref})

    def thread_state(self, thread_id: str) -> dict[str, Any]:
        return self._call("GET", _path("chat", thread_id, "state"))

    # -- models --------------------------------------------------------------------------
    def list_models(self) -> list[ModelEntry]:
        return self._call("GET", "models")

    def get_thread_model(self, thread_id: str) -> ThreadModel:
        return self._call("GET", _path("chat", thread_id, "model"))

    def set_thread_model(self, thread_id: str, name: str | None) -> ThreadModel:
        return self._call("POST", _path("chat", thread_id, "model"), {"name": name})

    # -- chat ----------------------------------------------------------------------------
    async def chat(self, thread_id: str, text: str, *, connection: str | None = None,
                   model: str | None = None, chart: bool = True,
                   sql_only: bool = False) -> AsyncIterator[Event]:
        """The turn's events as the service streams them (Server-Sent Events)."""
        import httpx

        body = {"text": text, "user_connection_id": connection, "model": model,
                "chart": chart, "sql_only": sql_only}
        timeout = httpx.Timeout(self._timeout, read=None)  # a turn may think for a while
        async with httpx.AsyncClient(base_url=self.base_url, headers=self._headers,
                                     timeout=timeout) as http:
            try:
                async with http.stream("POST", _path("chat", thread_id, "message"),
                                       content=json.dumps(body)) as resp:
                    if resp.status_code >= 400:
                        await resp.aread()
                        self._answer(resp)
                    ended = False
                    async for event in sse_events(resp.aiter_text()):
                        ended = ended or event.get("type") == "end"
                        yield event  # type: ignore[misc]
            except httpx.TransportError as exc:
                down = self._down(exc)
                yield {"type": "error", **down.to_dict()}  # type: ignore[misc]
                ended = False
            if not ended:
                yield {"type": "end", "full_response": ""}  # type: ignore[misc]

    def cancel(self, thread_id: str) -> bool:
        return bool(self._call("POST", _path("chat", thread_id, "cancel"), {})["cancelled"])

    def last_result(self, thread_id: str) -> pd.DataFrame | None:
        try:
            data = self._call("GET", _path("chat", thread_id, "result"), accept=ARROW)
        except NotFound:
            return None
        return frame_from_arrow(data)[0]

    def result_preview(self, thread_id: str) -> ResultPreview | None:
        try:
            page = self._call("GET", _path("chat", thread_id, "result"),
                              params={"limit": 10_000})
        except NotFound:
            return None
        return {"thread_id": thread_id, "sql": page.get("sql"), "columns": page["columns"],
                "rows": page["rows"], "row_count": page["row_count"],
                "truncated": page["truncated"], "process": page.get("process"),
                "connection_id": page.get("connection_id")}

    # -- audit and health ----------------------------------------------------------------
    def audit_log(self, *, limit: int = 100, all_users: bool = False) -> list[AuditEntry]:
        return self._call("GET", "audit", params={"limit": limit, "all": str(all_users)})

    def health(self) -> Health:
        return self._call("GET", "health")

    def close(self) -> None:
        self._http.close()


async def sse_events(chunks: AsyncIterator[str]) -> AsyncIterator[dict[str, Any]]:
    """JSON events of a Server-Sent Events body, as its pieces arrive (frames may be split
    across pieces, several may share one; comments are skipped)."""
    buf = ""
    async for piece in chunks:
        buf += piece.replace("\r\n", "\n")
        while "\n\n" in buf:
            frame, buf = buf.split("\n\n", 1)
            data = [line[5:].lstrip() for line in frame.split("\n") if line.startswith("data:")]
            if data:
                yield json.loads("\n".join(data))
