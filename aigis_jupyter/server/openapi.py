"""The OpenAPI 3 document of the extension, built from the route table and the contract's
types (pydantic turns each TypedDict into a JSON schema), served at `aigis/openapi.json`."""

from __future__ import annotations

import functools
from typing import Any

from .._version import __version__
from .base import AigisHandler, api
from .routes import PREFIX, Op, route_table

ERROR_SCHEMA = {
    "type": "object", "required": ["message", "reason"],
    "properties": {"message": {"type": "string"}, "reason": {"type": ["string", "null"]},
                   "action": {"type": "object"}},
}
#: What each status means in this API (DESIGN.md); every operation may answer these.
ERRORS = {"400": "Bad input", "403": "Not allowed, or not signed in", "404": "Not found, or "
          "not yours", "409": "Conflict", "422": "SQL refused by the guard",
          "502": "The model or the database failed"}


def _schema(kind: Any, defs: dict[str, Any]) -> dict[str, Any]:
    if kind is None:
        return {}
    if isinstance(kind, dict):
        return kind
    from pydantic import TypeAdapter

    out = TypeAdapter(kind).json_schema(ref_template="#/components/schemas/{model}")
    defs.update(out.pop("$defs", {}))
    name = getattr(kind, "__name__", None)
    if name and out.get("type") == "object" and "properties" in out:
        defs[name] = out
        return {"$ref": f"#/components/schemas/{name}"}
    return out


def _operation(path: str, op: Op, defs: dict[str, Any]) -> dict[str, Any]:
    params = [{"name": n, "in": "path", "required": True,
               "schema": {"type": "string", "pattern": r"^[^\x00]+$"}}
              for n in _path_names(path)]
    params += [{"name": n, "in": "query", "required": False, "description": d,
                "schema": {"type": t} if isinstance(t, str) else t} for n, t, d in op.params]
    responses: dict[str, Any] = {
        code: {"description": text, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/Error"}}}}
        for code, text in {**ERRORS, **op.errors}.items()}
    if op.status == 204:
        responses["204"] = {"description": "Done"}
    elif op.media == "text/event-stream":
        responses[str(op.status)] = {
            "description": "Server-Sent Events: each event's `data:` line is one JSON event, "
                           "its `id:` numbers it; comment lines keep the connection alive",
            "content": {op.media: {"schema": _sse_event(op.response, defs)}}}
    else:
        responses[str(op.status)] = {"description": op.summary, "content": {
            op.media: {"schema": _schema(op.response, defs)},
            **{media: {"schema": schema} for media, schema in op.alt_media.items()}}}
    for code in op.errors:  # e.g. /health's 503: the operation's own body, not an Error
        if op.response is not None and code not in ERRORS:
            responses[code]["content"]["application/json"]["schema"] = _schema(op.response,
                                                                                defs)
    out: dict[str, Any] = {"summary": op.summary, "parameters": params,
                           "responses": responses}
    if op.body is not None:
        body = op.body() if callable(op.body) else op.body
        # a body with no required field may be left out: the handlers read none as {}
        out["requestBody"] = {"required": _requires_something(body), "content": {
            "application/json": {"schema": body}}}
    return out


def _sse_event(event: Any, defs: dict[str, Any]) -> dict[str, Any]:
    """One Server-Sent Event (OpenAPI 3.1: the schema of a stream describes each event) whose
    `data` is the JSON of one chat event (`contract.Event`)."""
    defs["ChatEvent"] = _schema(event, defs)
    return {"type": "object", "required": ["data"], "properties": {
        "id": {"type": "string"}, "event": {"type": "string"},
        "data": {"type": "string", "contentMediaType": "application/json",
                 "contentSchema": {"$ref": "#/components/schemas/ChatEvent"}}}}


def _requires_something(schema: dict[str, Any]) -> bool:
    if schema.get("required") or schema.get("minProperties"):
        return True
    subs = schema.get("oneOf") or schema.get("anyOf") or []
    return bool(subs) and all(_requires_something(s) for s in subs)


def _path_names(path: str) -> list[str]:
    import re

    return re.findall(r"\{([^}]+)\}", path)


@functools.lru_cache(maxsize=1)
def document() -> dict[str, Any]:
    defs: dict[str, Any] = {"Error": ERROR_SCHEMA}
    paths = {PREFIX + r.path: {method: _operation(r.path, op, defs)
                               for method, op in r.ops.items()} for r in route_table()}
    paths[PREFIX + "/openapi.json"] = {"get": {
        "summary": "This document", "parameters": [],
        "responses": {"200": {"description": "OpenAPI 3", "content": {
            "application/json": {"schema": {"type": "object"}}}}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "aigis-jupyter", "version": __version__,
                 "description": "Chat with your databases from Jupyter: the REST + SSE API of "
                 "the server extension. Paths are under the server's base URL."},
        "paths": paths,
        "components": {"schemas": defs, "securitySchemes": {
            "token": {"type": "apiKey", "in": "header", "name": "Authorization",
                      "description": "`token <Jupyter token>`"}}},
        "security": [{"token": []}],
    }


class OpenAPIHandler(AigisHandler):
    @api
    async def get(self) -> None:
        self.reply(document())
