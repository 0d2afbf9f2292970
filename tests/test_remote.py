"""Hub mode without a hub: the remote client and the forwarding route against real servers.

A "service" server holds the store and the key; a "user" server, told where the service is
(`AIGIS_SERVICE_URL`), forwards its `aigis/` routes there with its own token; the remote
client (what a hub user's kernel uses) speaks to the service over HTTP and SSE. Both must
behave as the in-process service does: same shapes, same errors, DataFrames as Arrow.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sqlite3
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from live_server import live_server

from aigis_jupyter.client.remote import RemoteScope
from aigis_jupyter.errors import NotFound, ServiceUnavailable, SQLRefused

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    tmp = tmp_path_factory.mktemp("service")
    token = secrets.token_hex(16)
    with live_server(tmp, token, env={"MASTER_ENCRYPTION_KEY": "remote tests"}) as url:
        yield url, token


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from aigis_jupyter.demo import build_demo_sqlite

    return build_demo_sqlite(tmp_path_factory.mktemp("demo") / "demo.sqlite")


def _drain(stream: Any) -> list[dict[str, Any]]:
    async def go() -> list[dict[str, Any]]:
        return [e async for e in stream]

    return asyncio.run(go())


def test_the_remote_client_is_the_service_over_http(service: tuple[str, str],
                                                    demo_db: Path) -> None:
    url, token = service
    remote = RemoteScope(url + "aigis/", token)
    assert remote.health()["ok"] and remote.username
    conn = remote.create_connection({"name": "demo", "db_type": "sqlite",
                                     "host": str(demo_db)}, test=True)
    assert conn["warnings"] == [] and remote.get_connection("demo")["id"] == conn["id"]
    res = remote.run_sql("demo", "SELECT segment, COUNT(*) AS n FROM customers "
                         "GROUP BY segment ORDER BY segment")
    expected = sqlite3.connect(demo_db).execute(
        "SELECT segment, COUNT(*) FROM customers GROUP BY segment ORDER BY segment").fetchall()
    assert [tuple(r) for r in res.df.itertuples(index=False)] == expected
    assert res.df["n"].dtype.kind == "i"  # Arrow keeps the types
    assert "GROUP BY segment" in res.sql and res.truncated is False
    with pytest.raises(SQLRefused):
        remote.run_sql("demo", "DELETE FROM customers")
    with pytest.raises(NotFound) as missing:
        remote.get_connection("nowhere")
    assert missing.value.action == {"kind": "add_connection"}
    tid = remote.create_thread("remote", connection="demo", model="local")["id"]
    events = _drain(remote.chat(tid, "What tables are there?"))
    assert events[-1]["type"] == "end" and any(e["type"] == "table" for e in events)
    assert [m["role"] for m in remote.get_messages(tid)] == ["user", "assistant"]
    assert remote.get_thread(tid)["connection_name"] == "demo"
    schema = remote.schema("demo")
    assert {t["name"] for t in schema["tables"]} >= {"customers", "orders"}
    # teaching, over HTTP as in process
    [ex] = remote.add_examples("demo", [{"question": "How many customers?",
                                         "sql": "SELECT COUNT(*) FROM customers"}])
    assert remote.list_examples("demo") == [ex]
    assert remote.update_example("demo", ex["id"], {"question": "Customers?"})[
        "question"] == "Customers?"
    with pytest.raises(SQLRefused):
        remote.add_examples("demo", [{"question": "wipe", "sql": "DELETE FROM customers"}])
    remote.delete_example("demo", ex["id"])
    assert remote.list_examples("demo") == []
    with pytest.raises(NotFound):
        remote.verify_turn(tid)  # a schema answer has no SQL to verify


def test_the_magics_in_hub_mode_go_through_the_service(service: tuple[str, str],
                                                       demo_db: Path, monkeypatch: Any) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    url, token = service
    monkeypatch.setenv("AIGIS_SERVICE_URL", url)
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", token)
    monkeypatch.delenv("MASTER_ENCRYPTION_KEY", raising=False)
    shell = InteractiveShell.instance()
    try:
        shell.run_line_magic("load_ext", "aigis_jupyter")
        magics = shell.magics_manager.registry["AigisMagics"]
        assert isinstance(magics.scope, RemoteScope)
        shell.run_cell("%aigis connections add hubdemo --type sqlite --host " + str(demo_db))
        df = shell.run_cell("%%aigis sql --conn hubdemo -o seg\n"
                            "SELECT COUNT(*) AS n FROM customers").result
        assert int(df.iloc[0, 0]) == sqlite3.connect(demo_db).execute(
            "SELECT COUNT(*) FROM customers").fetchone()[0]
        names = set(shell.run_cell("%aigis connections list").result["name"])
        assert "hubdemo" in names
    finally:
        InteractiveShell.clear_instance()


def test_a_user_server_forwards_every_route_to_the_service(
        service: tuple[str, str], tmp_path: Path, demo_db: Path) -> None:
    url, token = service
    user_token = secrets.token_hex(16)
    with live_server(tmp_path / "user", user_token,
                     env={"AIGIS_SERVICE_URL": url, "JUPYTERHUB_API_TOKEN": token,
                          "MASTER_ENCRYPTION_KEY": ""}) as user_url:
        def call(method: str, path: str, body: Any = None) -> tuple[int, bytes, Any]:
            req = urllib.request.Request(
                user_url + "aigis/" + path, method=method,
                data=None if body is None else json.dumps(body).encode(),
                headers={"Authorization": f"token {user_token}"})
            try:
                with urllib.request.urlopen(req, timeout=60) as resp:
                    return resp.status, resp.read(), resp.headers
            except urllib.error.HTTPError as err:
                return err.code, err.read(), err.headers

        status, body, _ = call("GET", "health")
        assert status == 200 and json.loads(body)["ok"]
        status, body, _ = call("POST", "connections", {"name": "fwd", "db_type": "sqlite",
                                                       "host": str(demo_db)})
        assert status == 201
        status, body, _ = call("GET", "connections/nowhere")
        assert status == 404 and json.loads(body)["reason"] == "not_found"
        status, body, _ = call("POST", "chat/thread", {"connection": "fwd", "model": "local"})
        tid = json.loads(body)["thread_id"]
        status, body, headers = call("POST", f"chat/{tid}/message",
                                     {"text": "What tables are there?"})
        assert status == 200 and headers["Content-Type"].startswith("text/event-stream")
        assert b'"type": "end"' in body and b'"type": "table"' in body
        # the service holds the rows: the forwarding server itself stores nothing
        assert not (tmp_path / "user" / "data" / "aigis.sqlite").exists()


def test_a_service_that_does_not_answer_is_a_clear_error(tmp_path: Path) -> None:
    from live_server import free_port

    remote = RemoteScope(f"http://127.0.0.1:{free_port()}/aigis/", "x")
    with pytest.raises(ServiceUnavailable, match="not answering"):
        remote.list_connections()
    events = _drain(remote.chat("t", "hi"))
    assert events[0]["type"] == "error" and events[0]["reason"] == "service_unavailable"
    assert events[-1]["type"] == "end"
