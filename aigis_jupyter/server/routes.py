"""Every route of the extension with what it takes and returns: the URL table the server
registers and the OpenAPI document describes (`openapi.py`), from one list."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import handlers as h
from .results import ResultHandler
from .stream import MessageHandler

PREFIX = "/aigis"
ID = r"([^/]+)"


@dataclass(frozen=True)
class Op:
    summary: str
    response: Any = None  # a contract type, a JSON schema dict, or None (no body)
    body: Any = None  # a JSON schema dict of the request body
    status: int = 200
    params: tuple[tuple[str, str, str], ...] = ()  # (name, JSON type, description)
    media: str = "application/json"


@dataclass(frozen=True)
class Route:
    path: str  # OpenAPI style, `{thread_id}`
    handler: type
    ops: dict[str, Op] = field(default_factory=dict)

    @property
    def pattern(self) -> str:
        import re

        return PREFIX + re.sub(r"\{[^}]+\}", ID, self.path)


def _obj(props: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(required),
            "additionalProperties": False}


_S = {"type": "string"}
_SN = {"type": ["string", "null"]}
_CONNECTION_BODY = _obj({
    "name": _S, "db_type": {"type": "string", "enum": ["postgres", "mysql", "sqlite"]},
    "host": _SN, "port": {"type": ["integer", "string", "null"]}, "database": _SN,
    "username": _SN, "password": _SN, "allow_write": {"type": ["boolean", "null"]},
    "options": {"type": ["object", "null"], "additionalProperties": {
        "type": ["string", "number", "boolean"]}}})
_TEST = (("test", "boolean", "save only if the connection answers"),)


def route_table() -> list[Route]:
    from ..service import contract as c

    return [
        Route("/auth/me", h.MeHandler, {
            "get": Op("You, as Jupyter identified you", c.UserInfo),
            "put": Op("Change your display name or email", c.UserInfo,
                      _obj({"display_name": _SN, "email": _SN}))}),
        Route("/auth/users", h.UsersHandler, {
            "get": Op("Every user (administrators)", list[c.UserInfo])}),
        Route("/auth/users/{user_id}", h.UserHandler, {
            "get": Op("One user (administrators)", c.UserInfo),
            "delete": Op("Delete a user and all they own; audit rows stay (administrators)",
                         status=204)}),
        Route("/connections", h.ConnectionsHandler, {
            "get": Op("Your connections (never a password)", list[c.ConnectionInfo]),
            "post": Op("Save a connection", c.ConnectionInfo, _CONNECTION_BODY, 201, _TEST)}),
        Route("/connections/{connection_id}", h.ConnectionHandler, {
            "get": Op("One of your connections", c.ConnectionInfo),
            "put": Op("Change fields; password null keeps it, \"\" removes it",
                      c.ConnectionInfo, _CONNECTION_BODY, params=_TEST),
            "delete": Op("Delete a connection", status=204)}),
        Route("/connections/{connection_id}/test", h.ConnectionTestHandler, {
            "post": Op("Connect and run a trivial query", c.ConnectionTest, _obj({}))}),
        Route("/connections/{connection_id}/schema", h.ConnectionSchemaHandler, {
            "get": Op("Tables, columns, keys and row counts", c.SchemaInfo,
                      params=(("refresh", "boolean", "re-read the catalog"),))}),
        Route("/chat/thread", h.NewThreadHandler, {
            "post": Op("A new thread", {"allOf": [
                {"$ref": "#/components/schemas/ThreadInfo"},
                {"type": "object", "properties": {"thread_id": _S}, "required": ["thread_id"]}]},
                _obj({"title": _SN, "connection": _SN, "user_connection_id": _SN,
                      "model": _SN}), 201)}),
        Route("/chat/threads", h.ThreadsHandler, {
            "get": Op("Your threads, most recently active first", list[c.ThreadInfo])}),
        Route("/chat/{thread_id}", h.ThreadHandler, {
            "get": Op("The thread's messages", list[c.MessageInfo]),
            "put": Op("Rename the thread", c.ThreadInfo, _obj({"title": _SN}, ("title",))),
            "delete": Op("Delete the thread, its messages and checkpoints", status=204)}),
        Route("/chat/{thread_id}/message", MessageHandler, {
            "post": Op("Ask: the turn streams as Server-Sent Events, one JSON event a line",
                       None, _obj({"text": _S, "user_connection_id": _SN, "connection": _SN,
                                   "model": _SN, "chart": {"type": ["boolean", "null"]},
                                   "sql_only": {"type": ["boolean", "null"]}}, ("text",)),
                       media="text/event-stream")}),
        Route("/chat/{thread_id}/state", h.ThreadStateHandler, {
            "get": Op("The agent's checkpointed state (db_schema, sql_result, ...)",
                      {"type": "object"})}),
        Route("/chat/{thread_id}/connection", h.ThreadConnectionHandler, {
            "post": Op("Pick the thread's connection (null clears it)", c.ThreadInfo,
                       _obj({"user_connection_id": _SN, "connection": _SN}))}),
        Route("/chat/{thread_id}/model", h.ThreadModelHandler, {
            "get": Op("The thread's model and every model's availability", c.ThreadModel),
            "post": Op("Pick the thread's model by name or alias (null clears it)",
                       c.ThreadModel, _obj({"name": _SN, "model": _SN}))}),
        Route("/chat/{thread_id}/cancel", h.CancelHandler, {
            "post": Op("Stop the running turn and its SQL, wherever it runs",
                       _obj({"cancelled": {"type": "boolean"}}, ("cancelled",)), _obj({}))}),
        Route("/chat/{thread_id}/result", ResultHandler, {
            "get": Op("The last result: JSON pages, or Arrow IPC with Accept: "
                      "application/vnd.apache.arrow.stream", {"type": "object"},
                      params=(("offset", "integer", "first row"),
                              ("limit", "integer", "rows per page")))}),
        Route("/models", h.ModelsHandler, {
            "get": Op("Every known model, its availability and how to enable it",
                      list[c.ModelEntry])}),
        Route("/audit", h.AuditHandler, {
            "get": Op("Your statements, newest first", list[c.AuditEntry],
                      params=(("limit", "integer", "at most this many"),
                              ("all", "boolean", "everyone's (administrators)")))}),
        Route("/health", h.HealthHandler, {
            "get": Op("Store connectivity, migrations at head, key source", c.Health)}),
    ]
