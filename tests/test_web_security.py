"""Web security of the REST + SSE API: what a browser may do with its answers.

Cookie-authenticated POSTs without the XSRF token and foreign Origins are refused
(`test_server.py::test_cookie_requests_need_the_xsrf_token_and_a_matching_origin`, and on
the hub service `test_hub.py::test_a_browser_session_on_the_service_needs_xsrf`); HTML and
script in answers, tables and charts stay inert in the sidebar (`test_sidebar.py`). Here:
every kind of answer carries a restrictive Content-Security-Policy and is never sniffed,
cached or shared with another origin.
"""

from __future__ import annotations

from typing import Any

import pytest
from server_util import caller
from test_server import demo_path, jp_server_config, script, service  # noqa: F401

EVIL = "https://evil.example"


@pytest.fixture
def call(jp_fetch: Any) -> Any:
    return caller(jp_fetch)


def strict(headers: Any) -> list[str]:
    """What is wrong with a response's headers (empty when nothing is)."""
    wrong = []
    csp = [p.strip() for p in (headers.get("Content-Security-Policy") or "").split(";")]
    if "default-src 'none'" not in csp:
        wrong.append(f"CSP without default-src 'none': {csp}")
    if "frame-ancestors 'self'" not in csp:
        wrong.append(f"CSP lets other sites frame it: {csp}")
    if headers.get("X-Content-Type-Options") != "nosniff":
        wrong.append("may be sniffed as a page")
    if "no-store" not in (headers.get("Cache-Control") or ""):
        wrong.append(f"may be cached: {headers.get('Cache-Control')}")
    if headers.get("Access-Control-Allow-Origin") or headers.get(
            "Access-Control-Allow-Credentials"):
        wrong.append("shared with another origin")
    return wrong


async def test_every_kind_of_answer_carries_a_restrictive_policy(
        call: Any, service: Any, demo_path: str, jp_http_port: int,  # noqa: F811
        jp_base_url: str) -> None:
    """Success, refusal, not-found, admin-only, SQL refused, an event stream and an Arrow
    result all carry `default-src 'none'`, nosniff and no-store, even asked from elsewhere."""
    import httpx
    from server_users import token_of

    await call("alice", "POST", "connections",
               {"name": "demo", "db_type": "sqlite", "host": demo_path})
    script(service, "SELECT segment, COUNT(*) AS n FROM customers GROUP BY segment",
           "Three segments.")
    tid = (await call("alice", "POST", "chat/thread", {"connection": "demo",
                                                       "model": "scripted"})).json["thread_id"]
    origin = {"Origin": EVIL}
    answers = {
        "ok": await call("alice", "GET", "connections", headers=origin),
        "bad input": await call("alice", "POST", "chat/thread", {"title": 5}, headers=origin),
        "not found": await call("alice", "GET", "chat/nope", headers=origin),
        "admin only": await call("bob", "GET", "auth/users", headers=origin),
        "refused SQL": await call("alice", "POST", "connections/demo/query",
                                  {"sql": "DELETE FROM customers"}),
        "no token": await call(None, "GET", "connections"),
        "openapi": await call("alice", "GET", "openapi.json"),
    }
    assert [r.status for r in answers.values()] == [200, 400, 404, 403, 422, 403, 200]
    url = f"http://127.0.0.1:{jp_http_port}{jp_base_url}aigis/"
    auth = {"Authorization": f"token {token_of('alice')}"}
    async with httpx.AsyncClient(base_url=url, headers=auth, timeout=60) as http:
        async with http.stream("POST", f"chat/{tid}/message", json={"text": "segments?"}) as s:
            body = (await s.aread()).decode()
            assert s.status_code == 200 and '"type": "end"' in body, body
            answers["event stream"] = s
        arrow = await http.get(f"chat/{tid}/result",
                               headers={"Accept": "application/vnd.apache.arrow.stream"})
        assert arrow.status_code == 200
        answers["arrow"] = arrow
    async with httpx.AsyncClient(base_url=url, timeout=60) as anonymous:
        # as a browser sends it: no credentials on a preflight
        preflight = await anonymous.options("connections", headers={
            "Origin": EVIL, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type"})
        answers["preflight"] = preflight
    problems = {name: strict(r.headers) for name, r in answers.items()}
    problems = {k: v for k, v in problems.items() if v}
    # a preflight from elsewhere must not be granted, whatever its status
    assert not preflight.headers.get("Access-Control-Allow-Origin")
    assert problems == {}

