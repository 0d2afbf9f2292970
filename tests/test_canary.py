"""The secrets canary: a known password, the real one of a MariaDB login, goes through the
REST API of a live server and through the magics of a real kernel, and is then searched for
in every response, event, log line, notebook output and file those processes wrote (the
store with every table, LangGraph's checkpoints, WAL files, the key file). It is found only
sealed: the vault opens the stored ciphertext to it (the control), and nothing else holds it.

Logging runs at DEBUG in both processes, so a secret logged anywhere would be seen. The
sidebar's requests are the REST calls made here (the sidebar holds no other path), and the
hub's own canary is `test_hub.py::test_a_shared_connection_works_for_both_without_its_password`
with `test_no_secret_reaches_a_user_process_or_file`.
"""

from __future__ import annotations

import secrets
import uuid
from pathlib import Path
from typing import Any

import httpx
from kernel_util import ECHO_SETUP, failed, kernel, text
from live_server import live_server, log_tail

TESTS = Path(__file__).resolve().parent


def files_holding(root: Path, needle: str) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


def sealed_password(data_dir: Path, master_key: str, username: str, name: str) -> str | None:
    """The control: the store keeps the password, sealed, and the vault opens it."""
    from aigis_jupyter.service import AigisService
    from aigis_jupyter.settings import Settings

    svc = AigisService(Settings(data_dir=data_dir, master_keys=[master_key]))
    try:
        return svc.user(username).connection_spec(name).password
    finally:
        svc.close()


def test_the_password_is_only_ever_ciphertext_through_the_rest_api(
        pets_login: dict[str, Any], tmp_path: Path) -> None:
    """Every REST route a connection's password passes near answers and logs without it, and
    every file the server wrote holds it only sealed."""
    password = pets_login["password"]
    token, key = secrets.token_hex(16), "canary master key"
    seen: list[str] = []
    env = {"MASTER_ENCRYPTION_KEY": key, "PYTHONPATH": str(TESTS)}
    args = ["--ServerApp.jpserver_extensions=echo_model=True", "--ServerApp.log_level=DEBUG",
            "--AigisExtension.log_level=DEBUG"]
    with live_server(tmp_path, token, env=env, args=args) as url:
        http = httpx.Client(base_url=url + "aigis/", timeout=60,
                            headers={"Authorization": f"token {token}"})

        def call(method: str, path: str, body: Any = None, **kw: Any) -> httpx.Response:
            r = http.request(method, path, json=body, **kw)
            seen.append(f"{method} {path} {r.status_code} {dict(r.headers)} {r.text}")
            return r

        r = call("POST", "connections?test=true", {"name": "pets", **pets_login})
        assert r.status_code == 201, r.text
        cid = r.json()["id"]
        assert r.json()["has_password"] is True
        for method, path in (("GET", "connections"), ("GET", f"connections/{cid}"),
                             ("POST", f"connections/{cid}/test"),
                             ("GET", f"connections/{cid}/schema"), ("GET", "health"),
                             ("GET", "models")):
            assert call(method, path).status_code == 200, seen[-1]
        me = call("GET", "auth/me").json()["username"]
        assert call("POST", f"connections/{cid}/query",
                    {"sql": "SELECT name FROM pets ORDER BY id"}).status_code == 200, seen[-1]
        tid = call("POST", "chat/thread", {"connection": "pets", "model": "echo"}
                   ).json()["thread_id"]
        with http.stream("POST", f"chat/{tid}/message",
                         json={"text": "q1 sql: SELECT name FROM pets ORDER BY id"}) as s:
            stream = s.read().decode()
        seen.append(stream)
        assert '"rows": [["Rex"], ["Tom"]]' in stream and '"type": "end"' in stream, stream
        for path in (f"chat/{tid}", f"chat/{tid}/state", f"chat/{tid}/result", "audit",
                     "chat/threads"):
            assert call("GET", path).status_code == 200, seen[-1]
        arrow = http.get(f"chat/{tid}/result",
                         headers={"Accept": "application/vnd.apache.arrow.stream"})
        assert arrow.status_code == 200 and b"Rex" in arrow.content
        seen.append(arrow.content.decode("latin-1"))
        # a failing login: the server's refusal is shown, never the password that was sent
        wrong = f"Wrong-{uuid.uuid4().hex}"
        r = call("POST", "connections?test=true", {"name": "bad", **pets_login, "password": wrong})
        assert r.status_code == 502 and r.json()["reason"] == "auth_failed", r.text
        # a new password goes in by PUT, and out nowhere either
        assert call("PUT", f"connections/{cid}", {"password": password}).status_code == 200
        http.close()
    log = (tmp_path / "server.log").read_text()
    assert "[D " in log and "aigis" in log  # the control: the log ran at DEBUG
    for blob in [*seen, log]:
        assert password not in blob and wrong not in blob, blob[:300]
    assert files_holding(tmp_path, password) == [], log_tail(tmp_path / "server.log")
    assert files_holding(tmp_path, wrong) == []
    assert sealed_password(tmp_path / "data", key, me, "pets") == password


def test_the_password_is_only_ever_ciphertext_through_the_magics(
        pets_login: dict[str, Any], tmp_path: Path) -> None:
    """The password typed at the magic's prompt reaches no notebook output, kernel log or
    file: only the store's ciphertext holds it."""
    password, key = pets_login["password"], "canary kernel key"
    wrong = f"Wrong-{uuid.uuid4().hex}"
    debug = "import logging, sys\nlogging.basicConfig(level=logging.DEBUG, " \
            "stream=sys.__stderr__, force=True)\n"
    with kernel(tmp_path, MASTER_ENCRYPTION_KEY=key) as k:
        assert not failed(k.run(debug + ECHO_SETUP)), k.outputs[-3:]
        add = (f"%aigis connections add pets --type mysql --host {pets_login['host']} "
               f"--port {pets_login['port']} --db {pets_login['database']} "
               f"--user {pets_login['username']} --password")
        out = text(k.run(add, answer=password))
        assert "pets" in out and "error" not in out.lower(), out
        out = text(k.run("%%aigis --conn pets --model echo\n"
                         "q1 sql: SELECT name FROM pets ORDER BY id"))
        assert "Rex" in out and "Tom" in out, out
        for code in ("%aigis connections", "%aigis connections test pets",
                     "%aigis schema --conn pets", "%%aigis sql --conn pets\nSELECT name FROM pets",
                     "%aigis thread", "_m.scope.get_connection('pets')", "_m.scope.audit_log()"):
            msgs = k.run(code)
            assert not failed(msgs), (code, text(msgs))
        out = text(k.run(add.replace("pets", "bad", 1) + " --replace", answer=wrong))
        assert "Authentication failed" in out, out
        shown = [m["content"]["text"] for m in k.run("print(_m.scope.me()['username'])")
                 if m["msg_type"] == "stream"]
        user = "".join(shown).strip()
    kernel_log = k.log.read_text()
    assert "DEBUG" in kernel_log  # the control: the kernel logged at DEBUG
    for blob in [*k.outputs, kernel_log]:
        assert password not in blob and wrong not in blob, blob[:300]
    assert files_holding(tmp_path, password) == []
    assert files_holding(tmp_path, wrong) == []
    assert sealed_password(tmp_path / "data", key, user, "pets") == password
