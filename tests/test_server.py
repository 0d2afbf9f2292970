"""The server extension's REST + SSE API, through jupyter-server's own test fixtures.

Identity is jupyter-server's (a test identity provider gives alice, bob and root tokens of
their own); the store, vault, databases and agent are the real ones; only the model is
scripted.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from server_util import caller, server_config
from traitlets.config import Config

from aigis_jupyter.models import ModelInfo

SECRET = "Srv-s3cret-pw!"


@pytest.fixture
def jp_server_config(tmp_path: Path, settings: Any) -> Config:
    return server_config(tmp_path / "data", "server tests", max_rows=500)


@pytest.fixture
def call(jp_fetch: Any) -> Any:
    return caller(jp_fetch)


@pytest.fixture
def service(jp_serverapp: Any) -> Any:
    return jp_serverapp.web_app.settings["aigis"].service()


@pytest.fixture
def demo_path(tmp_path: Path) -> str:
    from aigis_jupyter.demo import build_demo_sqlite

    return str(build_demo_sqlite(tmp_path / "demo.sqlite"))


def script(service: Any, *replies: str, delay: float = 0.0) -> None:
    """The scripted model `scripted` answers these, one reply per model call."""
    from langchain_core.messages import AIMessage
    from test_magics import SlowFake

    model = SlowFake(messages=iter([AIMessage(content=r) for r in replies]), delay=delay)
    service.models.register(ModelInfo(name="scripted", provider="test", supports_tools=False),
                            lambda: model)


async def test_traits_reach_the_core_settings(jp_serverapp: Any, service: Any,
                                              tmp_path: Path) -> None:
    assert service.settings.max_rows == 500
    assert service.settings.data_dir == tmp_path / "data"
    assert service.settings.master_keys == ["server tests"]
    assert service.settings.sql_repairs == 2  # unset trait: the default stands


async def test_the_original_chat_flow_and_every_route(call: Any, service: Any,
                                                      demo_path: str) -> None:
    me = await call("alice", "GET", "auth/me")
    assert me.status == 200 and me.json["username"] == "alice" and not me.json["is_admin"]
    upd = await call("alice", "PUT", "auth/me", {"display_name": "Alice A."})
    assert upd.json["display_name"] == "Alice A."

    made = await call("alice", "POST", "connections", {"name": "demo", "db_type": "sqlite",
                                                        "host": demo_path}, params={"test": 1})
    assert made.status == 201 and made.json["name"] == "demo"
    cid = made.json["id"]
    assert (await call("alice", "GET", "connections")).json[0]["id"] == cid
    assert (await call("alice", "GET", f"connections/{cid}")).json["host"] == demo_path
    assert (await call("alice", "POST", f"connections/{cid}/test")).json["ok"] is True
    schema = (await call("alice", "GET", f"connections/{cid}/schema")).json
    counts = {t["name"]: t["rows"] for t in schema["tables"]}
    assert schema["rows_exact"] and counts["regions"] == 5
    renamed = await call("alice", "PUT", f"connections/{cid}", {"name": "shop"})
    assert renamed.json["name"] == "shop"

    thread = await call("alice", "POST", "chat/thread", {})
    assert thread.status == 201 and thread.json["thread_id"] == thread.json["id"]
    tid = thread.json["thread_id"]
    picked = await call("alice", "POST", f"chat/{tid}/connection", {"user_connection_id": cid})
    assert picked.json["connection_name"] == "shop"
    model = await call("alice", "GET", f"chat/{tid}/model")
    assert model.json["model"] is None and "local" in model.json["available"]
    script(service, "SELECT COUNT(*) AS n FROM regions", "There are 5 regions.")
    chosen = await call("alice", "POST", f"chat/{tid}/model", {"name": "scripted"})
    assert chosen.json["model"] == "scripted"

    sse = await call("alice", "POST", f"chat/{tid}/message", {"text": "How many regions?"})
    assert sse.status == 200 and sse.headers["Content-Type"].startswith("text/event-stream")
    assert sse.headers["Cache-Control"] == "no-store"
    events = sse.events()
    assert [e["type"] for e in events][-1] == "end"
    assert events[-1]["full_response"] == "There are 5 regions."
    assert b"id: 1\n" in sse.body
    msgs = (await call("alice", "GET", f"chat/{tid}")).json
    assert [(m["role"], m["content"]) for m in msgs] == [
        ("user", "How many regions?"), ("assistant", "There are 5 regions.")]
    state = (await call("alice", "GET", f"chat/{tid}/state")).json
    assert "regions" in state["db_schema"] and state["sql_result"]["rows"] == [[5]]

    page = (await call("alice", "GET", f"chat/{tid}/result", params={"limit": 10})).json
    assert page["rows"] == [[5]] and page["complete"] and page["columns"] == ["n"]
    arrow = await call("alice", "GET", f"chat/{tid}/result",
                       headers={"Accept": "application/vnd.apache.arrow.stream"})
    import pyarrow as pa

    table = pa.ipc.open_stream(io.BytesIO(arrow.body)).read_all()
    assert table.column_names == ["n"] and table.to_pylist() == [{"n": 5}]

    assert (await call("alice", "POST", f"chat/{tid}/cancel")).json == {"cancelled": False}
    threads = (await call("alice", "GET", "chat/threads")).json
    assert threads[0]["id"] == tid and threads[0]["title"] == "How many regions?"
    assert (await call("alice", "PUT", f"chat/{tid}", {"title": "regions"})).json[
        "title"] == "regions"
    audit = (await call("alice", "GET", "audit")).json
    assert audit[0]["sql"].startswith("SELECT COUNT(*)") and audit[0]["status"] == "ok"
    models = (await call("alice", "GET", "models")).json
    assert {m["name"] for m in models} >= {"local", "gpt-5", "scripted"}
    gpt5 = next(m for m in models if m["name"] == "gpt-5")
    assert not gpt5["available"] and gpt5["action"] == {"kind": "set_env",
                                                        "name": "OPENAI_API_KEY"}
    health = (await call("alice", "GET", "health")).json
    assert health["ok"] and health["store"]["at_head"] and health["vault"]["mode"]
    assert (await call("alice", "DELETE", f"chat/{tid}")).status == 204
    assert (await call("alice", "GET", f"chat/{tid}")).status == 404
    assert (await call("alice", "DELETE", f"connections/{cid}")).status == 204
    doc = (await call("alice", "GET", "openapi.json")).json
    assert doc["openapi"].startswith("3.") and "/aigis/chat/{thread_id}/message" in doc["paths"]


async def test_passwords_go_in_and_never_come_out(call: Any, pg_server: str) -> None:
    made = await call("alice", "POST", "connections", {
        "name": "pg", "db_type": "postgres", "host": "127.0.0.1", "database": "postgres",
        "username": "postgres", "password": SECRET}, params={"test": "true"})
    assert made.status == 201 and made.json["has_password"] and "password" not in made.json
    # the superuser login works, and the answer says why it should not be used
    assert [w["kind"] for w in made.json["warnings"]] == ["superuser"]
    assert made.json["warnings"][0]["action"] == {"kind": "readonly_role"}
    role = await call("alice", "POST", f"connections/{made.json['id']}/readonly-role", {})
    assert role.status == 200 and role.json["applied"] is False
    assert "<choose a password>" in role.json["sql"][0]
    everything = json.dumps([(await call("alice", "GET", "connections")).json,
                             (await call("alice", "GET", f"connections/{made.json['id']}")).json])
    assert SECRET not in everything and SECRET not in made.body.decode()


@pytest.mark.parametrize(("method", "path", "body", "raw", "says"), [
    ("POST", "connections", None, b"{bad json", "not valid JSON"),
    ("POST", "connections", None, b"[1, 2]", "must be a JSON object"),
    ("POST", "connections", {"name": "x", "db_type": "sqlite", "hots": "/x"}, None,
     "Unknown field(s): hots"),
    ("POST", "connections", {"name": "x", "db_type": "postgres", "host": "h", "port": "eighty"},
     None, "'port' must be a whole number"),
    ("POST", "connections", {"db_type": "sqlite", "host": "/x"}, None, "needs a 'name'"),
    ("POST", "chat/thread", {"title": 5}, None, "'title' must be text"),
    ("PUT", "auth/me", {"email": "not-an-email"}, None, "does not look like an email"),
    ("PUT", "auth/me", {"username": "mallory"}, None, "Unknown field(s): username"),
    ("GET", "audit?limit=0", None, None, "'limit' must be between 1 and 10000"),
])
async def test_bad_input_is_a_clear_400(call: Any, method: str, path: str, body: Any,
                                        raw: bytes | None, says: str) -> None:
    path, _, query = path.partition("?")
    params = dict(p.split("=") for p in query.split("&")) if query else None
    r = await call("alice", method, path, body, params=params, raw=raw)
    assert r.status == 400, r.body
    assert says in r.json["message"] and r.json["reason"] == "bad_input"


async def test_a_message_needs_text_of_the_right_type(call: Any) -> None:
    tid = (await call("alice", "POST", "chat/thread", {})).json["thread_id"]
    for body, says in (({}, "Missing field(s): text"), ({"text": 3}, "'text' must be text"),
                       ({"text": "hi", "chart": "yes"}, "'chart' must be bool"),
                       ({"text": "   "}, "the message is empty")):
        r = await call("alice", "POST", f"chat/{tid}/message", body)
        assert r.status == 400 and says in r.json["message"], (body, r.body)
    assert (await call("alice", "GET", f"chat/{tid}")).json == [], "nothing was stored"


async def test_a_request_too_large_is_refused(call: Any) -> None:
    r = await call("alice", "POST", "chat/thread", raw=b'{"title": "' + b"x" * (2 << 20) + b'"}')
    assert r.status == 400 and "too large" in r.json["message"]


async def test_no_model_is_an_error_event_with_an_action(call: Any, demo_path: str) -> None:
    await call("alice", "POST", "connections", {"name": "demo", "db_type": "sqlite",
                                                "host": demo_path})
    tid = (await call("alice", "POST", "chat/thread", {"connection": "demo"})).json["id"]
    events = (await call("alice", "POST", f"chat/{tid}/message", {"text": "hi"})).events()
    err = next(e for e in events if e["type"] == "error")
    assert err["reason"] == "no_model" and err["action"]["kind"] == "pick_model"
    assert "%aigis" not in err["message"] and events[-1]["type"] == "end"


async def test_unknown_and_other_users_ids_are_404(call: Any, service: Any,
                                                   demo_path: str) -> None:
    cid = (await call("alice", "POST", "connections", {
        "name": "mine", "db_type": "sqlite", "host": demo_path})).json["id"]
    tid = (await call("alice", "POST", "chat/thread", {"connection": cid})).json["id"]
    bob_thread = (await call("bob", "POST", "chat/thread", {})).json["id"]
    probes = [("GET", f"connections/{cid}", None), ("PUT", f"connections/{cid}", {"name": "x"}),
              ("DELETE", f"connections/{cid}", None), ("POST", f"connections/{cid}/test", None),
              ("GET", f"connections/{cid}/schema", None), ("GET", f"chat/{tid}", None),
              ("PUT", f"chat/{tid}", {"title": "x"}), ("DELETE", f"chat/{tid}", None),
              ("GET", f"chat/{tid}/state", None), ("GET", f"chat/{tid}/model", None),
              ("POST", f"chat/{tid}/model", {"name": None}),
              ("POST", f"chat/{tid}/connection", {"user_connection_id": None}),
              ("POST", f"chat/{tid}/cancel", None), ("GET", f"chat/{tid}/result", None),
              ("POST", f"chat/{tid}/message", {"text": "hi"}),
              ("POST", f"chat/{bob_thread}/connection", {"user_connection_id": cid}),
              ("POST", "chat/thread", {"connection": cid})]
    for method, path, body in probes:
        for who in ("bob",):
            r = await call(who, method, path, body)
            assert r.status == 404, (method, path, r.status, r.body)
            assert r.json["reason"] == "not_found"
        unknown = path.replace(cid, "no-such-id").replace(tid, "no-such-id")
        if unknown != path:
            assert (await call("alice", method, unknown, body)).status == 404, unknown
    # alice's objects are intact
    assert (await call("alice", "GET", f"connections/{cid}")).json["name"] == "mine"
    assert (await call("alice", "GET", f"chat/{tid}")).status == 200


async def test_no_token_is_refused_on_every_route(call: Any, jp_serverapp: Any) -> None:
    from aigis_jupyter.server.routes import route_table

    for r in route_table():
        path = r.path.replace("{", "").replace("}", "")
        for method in r.ops:
            resp = await call(None, method.upper(), path, {} if method != "get" else None)
            assert resp.status == 403, (method, path, resp.status)
    assert (await call(None, "GET", "openapi.json")).status == 403


async def test_admin_routes_are_for_admins(call: Any) -> None:
    alice = (await call("alice", "GET", "auth/me")).json
    for method, path in (("GET", "auth/users"), ("GET", f"auth/users/{alice['id']}"),
                         ("DELETE", f"auth/users/{alice['id']}")):
        r = await call("bob", method, path)
        assert r.status == 403 and r.json["reason"] == "forbidden", (path, r.body)
    assert (await call("bob", "GET", "audit", params={"all": "true"})).status == 403
    root = (await call("root", "GET", "auth/me")).json
    assert root["is_admin"] is True
    users = (await call("root", "GET", "auth/users")).json
    assert {"alice", "bob", "root"} <= {u["username"] for u in users}
    assert (await call("root", "GET", f"auth/users/{alice['id']}")).json["username"] == "alice"
    assert (await call("root", "GET", "audit", params={"all": "true"})).status == 200
    assert (await call("root", "DELETE", f"auth/users/{alice['id']}")).status == 204
    assert (await call("root", "GET", f"auth/users/{alice['id']}")).status == 404


def test_every_handler_requires_authentication() -> None:
    """Like jupyter-server's own `_check_handler_auth`: every implemented verb of every
    route is wrapped in `@web.authenticated` (and authorized for the `aigis` resource)."""
    from jupyter_server.serverapp import _has_tornado_web_authenticated
    from tornado import web

    from aigis_jupyter.server.app import url_handlers as routes

    checked = 0
    # local mode's routes, and the one a hub user's server forwards everything through
    for pattern, handler in [*routes(hub_mode=False), *routes(hub_mode=True)]:
        assert handler.auth_resource == "aigis", handler
        for verb in handler.SUPPORTED_METHODS:
            method = getattr(handler, verb.lower())
            if method == web.RequestHandler._unimplemented_method or verb == "OPTIONS":
                continue
            assert _has_tornado_web_authenticated(method), f"{verb} {pattern} is not protected"
            checked += 1
    assert checked >= 28  # the verbs implemented today


def test_the_openapi_document_matches_the_handlers() -> None:
    """Every documented operation is implemented, and every implemented verb documented."""
    from tornado import web

    from aigis_jupyter.server.app import url_handlers as routes
    from aigis_jupyter.server.openapi import document
    from aigis_jupyter.server.routes import PREFIX, route_table

    doc = document()
    registered = {pattern for pattern, _ in routes()}
    table = route_table()
    assert {PREFIX + r.path for r in table} | {PREFIX + "/openapi.json"} == set(doc["paths"])
    for r in table:
        assert r.pattern in registered
        implemented = {v.lower() for v in r.handler.SUPPORTED_METHODS
                       if v != "OPTIONS" and getattr(r.handler, v.lower())
                       != web.RequestHandler._unimplemented_method}
        assert implemented == set(doc["paths"][PREFIX + r.path]), r.path
    json.dumps(doc)  # serialisable as served


@pytest.fixture
def sse_call(jp_http_port: int, jp_base_url: str) -> Any:
    from server_util import sse

    async def go(path: str, body: dict[str, Any], user: str = "alice") -> Any:
        return await sse(jp_http_port, jp_base_url, path, body, user)

    return go


async def test_events_stream_as_they_are_produced(call: Any, service: Any, sse_call: Any,
                                                  demo_path: str) -> None:
    """Tokens 150 ms apart arrive 150 ms apart: the stream is not buffered."""
    await call("alice", "POST", "connections", {"name": "demo", "db_type": "sqlite",
                                                "host": demo_path})
    tid = (await call("alice", "POST", "chat/thread", {"connection": "demo"})).json["id"]
    # eight short sentences: the answer is sent a checked sentence at a time
    words = " ".join(f"part {n}." for n in ["one", "two", "three", "four", "five", "six",
                                           "seven", "eight"])
    script(service, "SELECT COUNT(*) AS n FROM regions", words, delay=0.08)
    status, headers, events, writer = await sse_call(
        f"chat/{tid}/message", {"text": "How many regions?", "model": "scripted"})
    assert " 200 " in status and headers["content-type"].startswith("text/event-stream")
    got = [(t, e) async for t, e in events]
    writer.close()
    chunk_times = [t for t, e in got if e["type"] == "chunk"]
    end_time = next(t for t, e in got if e["type"] == "end")
    assert len(chunk_times) >= 8
    # buffered, every event would arrive at once; streamed, they span the model's pauses
    assert chunk_times[-1] - chunk_times[0] > 0.6
    assert end_time - chunk_times[0] > 0.6


async def test_a_client_that_leaves_cancels_the_turn_and_its_sql(
        call: Any, service: Any, sse_call: Any, pg_db: str) -> None:
    """Hanging up mid-answer stops the PostgreSQL query; the turn is stored once, cancelled."""
    import asyncio

    import sqlalchemy as sa
    from test_turns import HEAVY_SQL, heavy_queries

    url = sa.engine.make_url(pg_db)
    await call("alice", "POST", "connections", {
        "name": "pg", "db_type": "postgres", "host": url.host, "port": url.port,
        "database": url.database, "username": url.username})
    tid = (await call("alice", "POST", "chat/thread", {"connection": "pg"})).json["id"]
    script(service, HEAVY_SQL, "never said")
    _status, _h, events, writer = await sse_call(
        f"chat/{tid}/message", {"text": "count a lot", "model": "scripted"})
    async for _t, event in events:
        if event["type"] == "sql":
            break
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while await asyncio.to_thread(heavy_queries, pg_db) == 0 and loop.time() < deadline:
        await asyncio.sleep(0.1)
    assert await asyncio.to_thread(heavy_queries, pg_db) == 1, "the query never started"
    writer.close()
    t0 = loop.time()
    while await asyncio.to_thread(heavy_queries, pg_db) and loop.time() - t0 < 15:
        await asyncio.sleep(0.1)
    assert await asyncio.to_thread(heavy_queries, pg_db) == 0, "the query outlived its client"
    while (await call("alice", "GET", "chat/threads")).json[0]["running"]:
        assert loop.time() - t0 < 15, "the turn never ended"
        await asyncio.sleep(0.1)
    msgs = (await call("alice", "GET", f"chat/{tid}")).json
    assert [m["role"] for m in msgs] == ["user", "assistant"]
    assert msgs[1]["payload"]["error"]["reason"] == "cancelled"


async def test_cookie_requests_need_the_xsrf_token_and_a_matching_origin(
        call: Any, jp_fetch: Any) -> None:
    """Token requests skip XSRF (scripts); cookie requests from a browser must carry it."""
    first = await call("alice", "GET", "auth/me")
    login = [c.split(";")[0] for c in first.headers.get_list("Set-Cookie")
             if c.startswith("username-")]
    assert login, first.headers
    cookie = {"Cookie": login[0]}
    assert (await call(None, "GET", "auth/me", headers=cookie)).json["username"] == "alice"
    refused = await call(None, "POST", "chat/thread", {}, headers=cookie)
    assert refused.status == 403 and "xsrf" in refused.body.decode().lower()
    with_xsrf = {"Cookie": f"{login[0]}; _xsrf=c0ffee", "X-XSRFToken": "c0ffee"}
    assert (await call(None, "POST", "chat/thread", {}, headers=with_xsrf)).status == 201
    foreign = await call(None, "POST", "chat/thread", {},
                         headers={**with_xsrf, "Origin": "https://evil.example"})
    assert foreign.status in (403, 404)
    for r in (first, refused, foreign):
        assert not r.headers.get("Access-Control-Allow-Origin")  # never "*"


@pytest.mark.local_model
@pytest.mark.slow
async def test_the_original_flow_with_the_embedded_model(call: Any, demo_path: str) -> None:
    """Create thread → set connection → set model by alias → ask → messages → state with
    db_schema → the result as Arrow and as JSON pages, with the real local model."""
    import sqlite3

    from conftest import missing

    try:
        import llama_cpp  # noqa: F401

        from aigis_jupyter.models import default_gguf_path

        default_gguf_path()
    except Exception as exc:
        missing(f"the embedded model ({exc})")
    cid = (await call("alice", "POST", "connections", {
        "name": "demo", "db_type": "sqlite", "host": demo_path}, params={"test": "true"})
    ).json["id"]
    tid = (await call("alice", "POST", "chat/thread", {})).json["thread_id"]
    assert (await call("alice", "POST", f"chat/{tid}/connection",
                       {"user_connection_id": cid})).status == 200
    chosen = await call("alice", "POST", f"chat/{tid}/model", {"name": "embedded"})
    assert chosen.json["model"] == "local"
    sse = await call("alice", "POST", f"chat/{tid}/message",
                     {"text": "How many customers are there?"})
    events = sse.events()
    assert events[-1]["type"] == "end" and not [e for e in events if e["type"] == "error"]
    expected = sqlite3.connect(demo_path).execute("SELECT COUNT(*) FROM customers").fetchone()[0]
    table = next(e for e in events if e["type"] == "table")
    assert table["rows"] == [[expected]]
    msgs = (await call("alice", "GET", f"chat/{tid}")).json
    assert [m["role"] for m in msgs] == ["user", "assistant"]
    assert msgs[1]["payload"]["table"]["rows"] == [[expected]]
    state = (await call("alice", "GET", f"chat/{tid}/state")).json
    assert "customers" in state["db_schema"] and state["model_name"] == "local"
    page = (await call("alice", "GET", f"chat/{tid}/result", params={"limit": 1})).json
    assert page["rows"] == [[expected]] and page["complete"]
    arrow = await call("alice", "GET", f"chat/{tid}/result",
                       headers={"Accept": "application/vnd.apache.arrow.stream"})
    import pyarrow as pa

    assert pa.ipc.open_stream(io.BytesIO(arrow.body)).read_all().to_pylist()[0] == {
        table["columns"][0]: expected}
