"""The JSON routes: users, connections, threads, models, audit, health (DESIGN.md).

Each method reads the request, calls one operation of the user's scope and writes its
result. Validation of content (names, types, ports, models) is the core's; here only the
shape of the HTTP body is checked.
"""

from __future__ import annotations

from typing import Any

from ..errors import BadInput
from ..service.validation import CONNECTION_FIELDS
from .base import AigisHandler, api

THREAD_FIELDS = ("title", "connection", "user_connection_id", "model")
#: The most audit rows one request returns.
AUDIT_LIMIT_MAX = 10_000


class MeHandler(AigisHandler):
    @api
    async def get(self) -> None:
        self.reply(await (await self.scope()).me())

    @api
    async def put(self) -> None:
        data = self.body(allowed=("display_name", "email"))
        self.reply(await (await self.scope()).update_me(**data))


class UsersHandler(AigisHandler):
    @api
    async def get(self) -> None:
        self.reply(await (await self.scope()).list_users())


class UserHandler(AigisHandler):
    @api
    async def get(self, user_id: str) -> None:
        self.reply(await (await self.scope()).get_user(user_id))

    @api
    async def delete(self, user_id: str) -> None:
        await (await self.scope()).delete_user(user_id)
        self.set_status(204)
        self.finish()


#: The JSON type of each connection field (null always allowed): the body's shape, checked
#: here; what the values mean (names, types, ports, options) is the core's to check.
CONNECTION_TYPES: dict[str, type | tuple[type, ...]] = {
    "name": str, "db_type": str, "host": str, "port": (int, str), "database": str,
    "username": str, "password": str, "options": dict, "allow_write": bool, "notes": str}


def _whole(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


class ConnectionBody(AigisHandler):
    def connection_body(self) -> dict[str, Any]:
        data = self.body(allowed=CONNECTION_FIELDS)
        # JSON has one kind of number: 5432.0 is the whole number 5432
        if "port" in data:
            data["port"] = _whole(data["port"])
        if isinstance(data.get("options"), dict):
            data["options"] = {k: _whole(v) for k, v in data["options"].items()}
        for key, kind in CONNECTION_TYPES.items():
            self.field(data, key, kind)
        timeout = (data.get("options") or {}).get("connect_timeout")
        if isinstance(timeout, str) and not (timeout.isascii() and timeout.isdigit()):
            # the core's check takes any Unicode digit ("²") and then fails on int(): a 500
            raise BadInput("The connect_timeout option must be a whole number of seconds.")
        return data


class ConnectionsHandler(ConnectionBody):
    @api
    async def get(self) -> None:
        self.reply(await (await self.scope()).list_connections())

    @api
    async def post(self) -> None:
        """Save a connection; `?test=true` saves it only if it answers."""
        data = self.connection_body()
        scope = await self.scope()
        self.reply(await scope.create_connection(data, test=self.bool_arg("test")), 201)


class ConnectionHandler(ConnectionBody):
    @api
    async def get(self, ref: str) -> None:
        self.reply(await (await self.scope()).get_connection(ref))

    @api
    async def put(self, ref: str) -> None:
        """Change some fields; `password` absent or null keeps it, "" removes it."""
        data = self.connection_body()
        scope = await self.scope()
        self.reply(await scope.update_connection(ref, data, test=self.bool_arg("test")))

    @api
    async def delete(self, ref: str) -> None:
        await (await self.scope()).delete_connection(ref)
        self.set_status(204)
        self.finish()


class ConnectionTestHandler(AigisHandler):
    @api
    async def post(self, ref: str) -> None:
        self.body(allowed=())
        self.reply(await (await self.scope()).test_connection(ref))


class ReadonlyRoleHandler(AigisHandler):
    @api
    async def post(self, ref: str) -> None:
        """The SQL of a read-only login; `apply` creates it with the connection's login."""
        data = self.body(allowed=("role", "apply", "save_as"))
        scope = await self.scope()
        self.reply(await scope.readonly_role(
            ref, role=self.field(data, "role", str, "aigis_readonly"),
            apply=self.field(data, "apply", bool, False),
            save_as=self.field(data, "save_as", str)))


class ConnectionSchemaHandler(AigisHandler):
    @api
    async def get(self, ref: str) -> None:
        scope = await self.scope()
        self.reply(await scope.schema(ref, refresh=self.bool_arg("refresh")))


class NewThreadHandler(AigisHandler):
    @api
    async def post(self) -> None:
        """A new thread → `{"thread_id", ...the thread}` (the original's shape, and more)."""
        data = self.body(allowed=THREAD_FIELDS)
        conn = self.field(data, "connection", str) or self.field(data, "user_connection_id", str)
        thread = await (await self.scope()).create_thread(
            self.field(data, "title", str), connection=conn, model=self.field(data, "model", str))
        self.reply({"thread_id": thread["id"], **thread}, 201)


class ThreadsHandler(AigisHandler):
    @api
    async def get(self) -> None:
        self.reply(await (await self.scope()).list_threads())


class ThreadHandler(AigisHandler):
    @api
    async def get(self, thread_id: str) -> None:
        """The thread's persisted messages."""
        self.reply(await (await self.scope()).get_messages(thread_id))

    @api
    async def put(self, thread_id: str) -> None:
        data = self.body(allowed=("title",), required=("title",))
        scope = await self.scope()
        self.reply(await scope.rename_thread(thread_id, self.field(data, "title", str)))

    @api
    async def delete(self, thread_id: str) -> None:
        await (await self.scope()).delete_thread(thread_id)
        self.set_status(204)
        self.finish()


class ThreadStateHandler(AigisHandler):
    @api
    async def get(self, thread_id: str) -> None:
        self.reply(await (await self.scope()).thread_state(thread_id))


class ThreadConnectionHandler(AigisHandler):
    @api
    async def post(self, thread_id: str) -> None:
        """Pick the thread's connection (`user_connection_id`, as the original; null clears)."""
        data = self.body(allowed=("user_connection_id", "connection"))
        if "user_connection_id" not in data and "connection" not in data:
            raise BadInput("Give 'user_connection_id' (a connection id or name, or null).")
        ref = self.field(data, "user_connection_id", str) or self.field(data, "connection", str)
        self.reply(await (await self.scope()).set_thread_connection(thread_id, ref))


class ThreadModelHandler(AigisHandler):
    @api
    async def get(self, thread_id: str) -> None:
        self.reply(await (await self.scope()).get_thread_model(thread_id))

    @api
    async def post(self, thread_id: str) -> None:
        """Pick the thread's model by name or alias (`{"name": "qwen"}`; null clears)."""
        data = self.body(allowed=("name", "model"))
        if "name" not in data and "model" not in data:
            raise BadInput("Give 'name': a model name or alias, or null.")
        name = self.field(data, "name", str) or self.field(data, "model", str)
        self.reply(await (await self.scope()).set_thread_model(thread_id, name))


class CancelHandler(AigisHandler):
    @api
    async def post(self, thread_id: str) -> None:
        self.body(allowed=())
        self.reply({"cancelled": await (await self.scope()).cancel(thread_id)})


class ModelsHandler(AigisHandler):
    @api
    async def get(self) -> None:
        self.reply(await (await self.scope()).list_models())


class AuditHandler(AigisHandler):
    @api
    async def get(self) -> None:
        """Your statements, newest first; `?all=true` (admins) everyone's."""
        scope = await self.scope()
        self.reply(await scope.audit_log(limit=self.int_arg("limit", 100, 1, AUDIT_LIMIT_MAX),
                                         all_users=self.bool_arg("all")))


class HealthHandler(AigisHandler):
    @api
    async def get(self) -> None:
        """The store, its migrations and the key source (never the key)."""
        health = await (await self.scope()).health()
        self.reply(health, 200 if health["ok"] else 503)
