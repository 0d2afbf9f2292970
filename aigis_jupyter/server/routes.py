"""Every route of the extension with what it takes and returns: the URL table the server
registers and the OpenAPI document describes (`openapi.py`), from one list."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import handlers as h
from . import sharing as sh
from . import teach as te
from .handlers import AUDIT_LIMIT_MAX
from .results import PAGE_MAX, RESULT_OFFSET_MAX, ResultHandler
from .stream import MessageHandler

PREFIX = "/aigis"
ID = r"([^/]+)"


@dataclass(frozen=True)
class Op:
    summary: str
    response: Any = None  # a contract type, a JSON schema dict, or None (no body)
    #: the request body's JSON schema, or a function building it (when the document is built)
    body: Any = None
    status: int = 200
    #: query parameters: (name, JSON type or a JSON schema, description)
    params: tuple[tuple[str, str | dict[str, Any], str], ...] = ()
    media: str = "application/json"
    #: more content types of the success response: {media type: JSON schema}
    alt_media: dict[str, Any] = field(default_factory=dict)
    #: statuses this operation may answer besides the common errors: {status: description}
    errors: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Route:
    path: str  # OpenAPI style, `{thread_id}`
    handler: type
    ops: dict[str, Op] = field(default_factory=dict)

    @property
    def pattern(self) -> str:
        import re

        return PREFIX + re.sub(r"\{[^}]+\}", ID, self.path)


def _obj(props: dict[str, Any], required: tuple[str, ...] = (), **more: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(required),
            "additionalProperties": False, **more}


# What the core accepts, as JSON Schema (`service/validation.py`): text fields are stripped
# before their checks, so patterns allow surrounding white space.
_S = {"type": "string"}
_SN = {"type": ["string", "null"]}
#: White space as Python's `str.strip()` sees it, spelled out: JSON Schema's `\s` (ECMA 262)
#: is another set (it lacks U+001C-U+001F and U+0085, and has U+FEFF).
_WS = (r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f"
       r"\u205f\u3000")
_SP = f"[{_WS}]*"  # optional white space
#: What `int()` skips around digits: the same, without U+001C-U+001F.
_INT_SP = _SP.replace(r"\x1c-\x1f ", " ")
#: No request text may hold U+0000 (`base.NUL_MESSAGE`).
_NO_NUL = r"^[^\x00]*$"
_TN = {"type": ["string", "null"], "pattern": _NO_NUL}
#: Some text, not only white space (a question, a file path).
_SOME = rf"^[^\x00]*[^\x00{_WS}][^\x00]*$"
_TEXT = {"type": "string", "pattern": _SOME}


def _opt_text(max_len: int) -> dict[str, Any]:
    """`validation.opt_str`: optional text, stripped, empty means none, at most max_len."""
    return {"type": ["string", "null"], "maxLength": max_len, "pattern": _NO_NUL}


#: `validation.NAME_MAX`, `_NAME_RE`: 1-100 characters after stripping, no control characters.
_NAME = {"type": "string", "pattern": rf"^{_SP}[^\x00-\x1f\x7f{_WS}]"
                                      rf"(?:[^\x00-\x1f\x7f]{{0,98}}[^\x00-\x1f\x7f{_WS}])?{_SP}$"}
#: `validation._port`: a whole number 1-65535, as a number or its digits; null or "" for none.
_PORT = {"anyOf": [
    {"type": "integer", "minimum": 1, "maximum": 65535},
    {"type": "string",
     "pattern": rf"^{_INT_SP}(?:[1-9][0-9]{{0,3}}|[1-5][0-9]{{4}}|6[0-4][0-9]{{3}}"
                rf"|65[0-4][0-9]{{2}}|655[0-2][0-9]|6553[0-5]){_INT_SP}$"},
    {"const": ""}, {"type": "null"}]}
#: `validation.email` (after stripping; empty means none).
_EMAIL = {"type": ["string", "null"], "maxLength": 320,
          "pattern": rf"^{_SP}(?:[^@\x00{_WS}]+@[^@\x00{_WS}]+)?{_SP}$"}
#: A role name (`readonly_role`): letters, digits and underscores, at most 63; null: the default.
_ROLE = {"type": ["string", "null"], "pattern": rf"^{_SP}\w{{1,63}}{_SP}$"}
_OPTION_VALUE = {"anyOf": [{"type": "string", "pattern": _NO_NUL},
                           {"type": ["number", "boolean"]}]}


def connection_body(*, partial: bool) -> dict[str, Any]:
    """A connection's fields, by database type (`validation.connection` and each dialect's
    options). Creating needs name, db_type and host (and a database where the type has no
    default); a change (`partial`) may send any subset, checked merged with the stored
    connection, which a schema cannot express."""
    from ..databases.engines import DIALECTS

    common = {"name": _NAME, "port": _PORT, "password": _TN,
              "allow_write": {"type": ["boolean", "null"]}, "notes": _NOTES}
    variants = []
    for name, d in sorted(DIALECTS.items()):
        types = sorted({name, *d.aliases})
        options = sorted({*d.options, "schema", "role", "connect_timeout"})
        opt_schema = {"type": ["object", "null"], "propertyNames": {"enum": options},
                      "additionalProperties": _OPTION_VALUE,
                      "properties": {"connect_timeout": {"anyOf": [
                          {"type": "integer", "minimum": 1},
                          {"type": "string", "pattern": r"^[0-9]*[1-9][0-9]*$"}]}}}
        if d.file_based:
            host = {"type": "string", "maxLength": 1024, "pattern": _SOME,
                    "description": "the database file's path"}
            extra = {"database": _opt_text(255), "username": _opt_text(255)}
            required = ("name", "db_type", "host")
        else:
            host = {"type": "string", "maxLength": 1024,
                    "pattern": rf"^{_SP}[^/\x00{_WS}]+{_SP}$",
                    "description": "server name or address"}
            database = ({"type": "string", "maxLength": 255, "pattern": _SOME}
                        if not d.default_database else _opt_text(255))
            extra = {"database": database, "username": _opt_text(255)}
            required = ("name", "db_type", "host") + (
                () if d.default_database else ("database",))
        variants.append(_obj({**common, **extra, "db_type": {"type": "string", "enum": types},
                              "host": host, "options": opt_schema}, required))
    if not partial:
        return {"oneOf": variants}
    every_type = sorted(t for v in variants for t in v["properties"]["db_type"]["enum"])
    return _obj({"name": _NAME, "db_type": {"type": "string", "enum": every_type},
                 "host": {"type": "string", "maxLength": 1024, "pattern": _SOME},
                 "port": _PORT, "database": _opt_text(255), "username": _opt_text(255),
                 "password": _TN, "allow_write": {"type": ["boolean", "null"]},
                 "notes": _NOTES, "options": {"type": ["object", "null"],
                             "additionalProperties": _OPTION_VALUE}})


#: `validation.NOTES_MAX`: what the assistant should know about the data (business terms).
_NOTES = {**_opt_text(4_000), "description": "business terms and rules for the assistant"}
#: A verified query (`validation.example`): a question and the SQL a person confirmed.
_EXAMPLE = _obj({"question": {**_TEXT, "maxLength": 20_000},
                 "sql": {**_TEXT, "maxLength": 20_000}}, ("question", "sql"))


def _new_connection_body() -> dict[str, Any]:
    return connection_body(partial=False)


def _connection_change_body() -> dict[str, Any]:
    return connection_body(partial=True)


#: A yes/no query parameter (`AigisHandler.bool_arg`, any letter case): true, 1, yes, on; or
#: false, 0, no, off, empty.
_FLAG = {"type": "string", "pattern": "^(?:[Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]|1|0|[Yy][Ee][Ss]"
                                      "|[Nn][Oo]|[Oo][Nn]|[Oo][Ff][Ff])?$"}
_TEST = (("test", _FLAG, "save only if the connection answers"),)
#: A model by name or alias, or null (none).
_MODEL = {**_TN, "description": "a model name or alias"}
#: A connection by id or name, or null (none).
_CONN = {**_TN, "description": "a connection id or name"}
_ARROW = "application/vnd.apache.arrow.stream"
_RESULT_PAGE = _obj({
    "thread_id": _S, "sql": _SN, "columns": {"type": "array", "items": _S},
    "rows": {"type": "array", "items": {"type": "array"}},
    "offset": {"type": "integer"}, "limit": {"type": "integer"},
    "row_count": {"type": "integer"}, "truncated": {"type": "boolean"},
    "complete": {"type": "boolean"}, "process": _SN},
    ("thread_id", "columns", "rows", "offset", "limit", "row_count", "truncated", "complete"))
_RESULT_PAGE["additionalProperties"] = True
#: `POST /connections/{id}/query` as JSON: the rows with the statement that ran.
_RESULT_ROWS = {"type": "object", "required": ["sql", "row_count", "truncated", "columns", "rows"],
                "properties": {"sql": _S, "row_count": {"type": "integer"},
                               "truncated": {"type": "boolean"},
                               "duration_ms": {"type": ["number", "null"]},
                               "columns": {"type": "array", "items": _S},
                               "rows": {"type": "array", "items": {"type": "array"}}}}
#: Whom a connection is shared with: a user or a group name (`_grantee`); the other is
#: left out, null or empty.
_GRANTEE = {"type": "string", "maxLength": 255, "pattern": _SOME}
_NONE = {"enum": [None, ""]}


def route_table() -> list[Route]:
    from ..service import contract as c

    title = _opt_text(255)
    return [
        Route("/auth/me", h.MeHandler, {
            "get": Op("You, as Jupyter identified you", c.UserInfo),
            "put": Op("Change your display name or email", c.UserInfo,
                      _obj({"display_name": _opt_text(255), "email": _EMAIL}))}),
        Route("/auth/users", h.UsersHandler, {
            "get": Op("Every user (administrators)", list[c.UserInfo])}),
        Route("/auth/users/{user_id}", h.UserHandler, {
            "get": Op("One user (administrators)", c.UserInfo),
            "delete": Op("Delete a user and all they own; audit rows stay (administrators). "
                         "Not yourself: that is a 400.", status=204)}),
        Route("/connections", h.ConnectionsHandler, {
            "get": Op("Your connections (never a password)", list[c.ConnectionInfo]),
            "post": Op("Save a connection; 409 when you have one of that name",
                       c.ConnectionInfo, _new_connection_body, 201, _TEST)}),
        Route("/connections/{connection_id}", h.ConnectionHandler, {
            "get": Op("One of your connections", c.ConnectionInfo),
            "put": Op("Change fields; password null keeps it, \"\" removes it. The result "
                      "must be a valid connection (400 otherwise)",
                      c.ConnectionInfo, _connection_change_body, params=_TEST),
            "delete": Op("Delete a connection", status=204)}),
        Route("/connections/{connection_id}/test", h.ConnectionTestHandler, {
            "post": Op("Connect and run a trivial query", c.ConnectionTest, _obj({}))}),
        Route("/connections/{connection_id}/readonly-role", h.ReadonlyRoleHandler, {
            "post": Op("The SQL of a login that can only read this database; `apply` creates "
                       "it with the connection's own login (and `save_as` a connection for it)",
                       c.ReadonlyRole, _obj({"role": _ROLE,
                                             "apply": {"type": ["boolean", "null"]},
                                             "save_as": _TN}))}),
        Route("/connections/{connection_id}/schema", h.ConnectionSchemaHandler, {
            "get": Op("Tables, columns, keys and row counts", c.SchemaInfo,
                      params=(("refresh", _FLAG, "re-read the catalog"),))}),
        Route("/connections/{connection_id}/query", sh.QueryHandler, {
            "post": Op("Run your own SQL through the guard: Arrow IPC with Accept: "
                       "application/vnd.apache.arrow.stream, else JSON", {"type": "object"},
                       _RESULT_ROWS,
                       _obj({"sql": _TEXT, "max_rows": {"type": ["integer", "null"], "minimum": 0},
                             "thread_id": _TN}, ("sql",)),
                       alt_media={_ARROW: {"type": "string", "format": "binary"}})}),
        Route("/connections/{connection_id}/grants", sh.GrantsHandler, {
            "get": Op("Whom your connection is shared with", list[c.Grant]),
            "post": Op("Share it with a user or a hub group (administrators)", list[c.Grant],
                       {"oneOf": [_obj({"user": _GRANTEE, "group": _NONE}, ("user",)),
                                  _obj({"group": _GRANTEE, "user": _NONE}, ("group",))]}),
            "delete": Op("Stop sharing it", list[c.Grant],
                         params=(("user", _GRANTEE, "a user name (or give group)"),
                                 ("group", _GRANTEE, "a group name (or give user)")))}),
        Route("/connections/{connection_id}/examples", te.ExamplesHandler, {
            "get": Op("The connection's verified queries (an export)", list[c.Example]),
            "post": Op("Teach a verified query: 201, or 200 when the question was taught "
                       "before (its SQL is replaced). Its owner only (403 on a shared "
                       "connection); a statement the guard refuses is a 422",
                       c.Example, _EXAMPLE, 201)}),
        Route("/connections/{connection_id}/examples/import", te.ExamplesImportHandler, {
            "post": Op("Teach many verified queries at once: all or none", list[c.Example],
                       _obj({"examples": {"type": "array", "items": _EXAMPLE, "minItems": 1,
                                          "maxItems": 1_000}}, ("examples",)), 201)}),
        Route("/connections/{connection_id}/examples/{example_id}", te.ExampleHandler, {
            "put": Op("Change a verified query's question or SQL", c.Example,
                      _obj({"question": {**_TEXT, "maxLength": 20_000},
                            "sql": {**_TEXT, "maxLength": 20_000}})),
            "delete": Op("Remove a verified query", status=204)}),
        Route("/demo", sh.DemoHandler, {
            "post": Op("Build the demo database and register it for you", c.DemoConnection,
                       _obj({"name": {"anyOf": [_NAME, {"type": "null"}]}}))}),
        Route("/chat/thread", h.NewThreadHandler, {
            "post": Op("A new thread (an unknown model is a 400, an unknown connection a 404)",
                       {"allOf": [
                           {"$ref": "#/components/schemas/ThreadInfo"},
                           {"type": "object", "properties": {"thread_id": _S},
                            "required": ["thread_id"]}]},
                       _obj({"title": title, "connection": _CONN, "user_connection_id": _CONN,
                             "model": _MODEL}), 201)}),
        Route("/chat/threads", h.ThreadsHandler, {
            "get": Op("Your threads, most recently active first", list[c.ThreadInfo])}),
        Route("/chat/{thread_id}", h.ThreadHandler, {
            "get": Op("The thread's messages", list[c.MessageInfo]),
            "put": Op("Rename the thread (null or empty clears the title)", c.ThreadInfo,
                      _obj({"title": title}, ("title",))),
            "delete": Op("Delete the thread, its messages and checkpoints", status=204)}),
        Route("/chat/{thread_id}/message", MessageHandler, {
            "post": Op("Ask: the turn streams as Server-Sent Events, one JSON event a line. "
                       "Refusals before the turn starts are JSON errors (an unknown model "
                       "400, a turn already running 409)",
                       c.Event, _obj({"text": _TEXT, "user_connection_id": _CONN,
                                   "connection": _CONN, "model": _MODEL,
                                   "chart": {"type": ["boolean", "null"]},
                                   "sql_only": {"type": ["boolean", "null"]}}, ("text",)),
                       media="text/event-stream")}),
        Route("/chat/{thread_id}/state", h.ThreadStateHandler, {
            "get": Op("The agent's checkpointed state (db_schema, sql_result, ...)",
                      {"type": "object"})}),
        Route("/chat/{thread_id}/connection", h.ThreadConnectionHandler, {
            "post": Op("Pick the thread's connection (null clears it)", c.ThreadInfo,
                       _obj({"user_connection_id": _CONN, "connection": _CONN},
                            minProperties=1))}),
        Route("/chat/{thread_id}/model", h.ThreadModelHandler, {
            "get": Op("The thread's model and every model's availability", c.ThreadModel),
            "post": Op("Pick the thread's model by name or alias (null clears it; an unknown "
                       "model is a 400)", c.ThreadModel,
                       _obj({"name": _MODEL, "model": _MODEL}, minProperties=1))}),
        Route("/chat/{thread_id}/verify", te.VerifyHandler, {
            "post": Op("Teach the thread's last answered question with its SQL (a verified "
                       "query on the thread's connection)", c.Example, _obj({}), 201)}),
        Route("/chat/{thread_id}/cancel", h.CancelHandler, {
            "post": Op("Stop the running turn and its SQL, wherever it runs",
                       _obj({"cancelled": {"type": "boolean"}}, ("cancelled",)), _obj({}))}),
        Route("/chat/{thread_id}/result", ResultHandler, {
            "get": Op("The last result: JSON pages, or the whole frame as Arrow IPC with "
                      f"Accept: {_ARROW}", _RESULT_PAGE,
                      params=(("offset", {"type": "integer", "minimum": 0,
                                          "maximum": RESULT_OFFSET_MAX}, "first row"),
                              ("limit", {"type": "integer", "minimum": 1,
                                         "maximum": PAGE_MAX}, "rows per page")),
                      alt_media={_ARROW: {"type": "string", "format": "binary"}})}),
        Route("/models", h.ModelsHandler, {
            "get": Op("Every known model, its availability and how to enable it",
                      list[c.ModelEntry])}),
        Route("/audit", h.AuditHandler, {
            "get": Op("Your statements, newest first", list[c.AuditEntry],
                      params=(("limit", {"type": "integer", "minimum": 1,
                                         "maximum": AUDIT_LIMIT_MAX}, "at most this many"),
                              ("all", _FLAG, "everyone's (administrators)")))}),
        Route("/health", h.HealthHandler, {
            "get": Op("Store connectivity, migrations at head, key source", c.Health,
                      errors={"503": "Not healthy: the same body, with ok false"})}),
    ]
