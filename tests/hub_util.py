"""Helpers of the JupyterHub test (`tests/test_hub.py`), and the one piece of it that runs
inside the Aigis service.

* `ensure_chp`: configurable-http-proxy, an npm package, installed once under ~/.cache.
* `RoundRobin`: a small TCP proxy alternating between service replicas, as a Kubernetes
  Service does; a replica that refuses is skipped, and with none left the client's
  connection is closed (what a client sees when the service is down).
* `KernelClient`: runs code in a kernel through a user's single-user server (REST to start
  it, the websocket channels to execute), as JupyterLab does.
* `/proc` readers: the environment and command line of a process, its descendants.
* A Jupyter server extension (`_load_jupyter_server_extension`): the service processes load
  it (the test puts this directory on their PYTHONPATH and enables it), and it registers a
  scripted model, `scripted`, that writes SQL by words of the question; one of its queries
  runs until cancelled.

Module level imports only the standard library: the service imports this file too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

CHP_VERSION = "5.3.0"
CHP_PREFIX = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "aigis-chp"

MODEL_NAME = "scripted"
#: A query that runs for minutes unless cancelled (pg_sleep is refused by the guard).
LONG_SQL = "SELECT COUNT(*) AS n FROM generate_series(1, 3000000000) AS g"
#: (a word of the question, the SQL the model writes); the first match wins.
SCRIPTS: list[tuple[str, str]] = [
    ("forever", LONG_SQL),
    ("sales", "SELECT SUM(amount) AS total FROM sales"),
    ("items", "SELECT COUNT(*) AS n FROM items"),
]
DEFAULT_SQL = "SELECT 1 AS one"


# -- configurable-http-proxy ---------------------------------------------------------------

def ensure_chp() -> str | None:
    """The configurable-http-proxy command: on PATH, in the cache, or installed there now
    with npm (about 2 s). None when neither it nor npm is available."""
    found = shutil.which("configurable-http-proxy")
    if found:
        return found
    local = CHP_PREFIX / "node_modules" / ".bin" / "configurable-http-proxy"
    if local.exists():
        return str(local)
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        return None
    CHP_PREFIX.mkdir(parents=True, exist_ok=True)
    subprocess.run([npm, "install", "--prefix", str(CHP_PREFIX), "--no-audit", "--no-fund",
                    "--loglevel=error", f"configurable-http-proxy@{CHP_VERSION}"],
                   check=False, capture_output=True, timeout=300)
    return str(local) if local.exists() else None


# -- ports and waiting -----------------------------------------------------------------------

def free_ports(n: int) -> list[int]:
    """n distinct free ports on 127.0.0.1."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0,
             interval: float = 0.2, log: Path | None = None) -> Any:
    """Poll `check` until it returns something truthy; its value. A timeout fails with
    `what` and the end of `log`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except Exception:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-4000:] if log and log.exists() else ""
            raise TimeoutError(f"{what} did not happen within {timeout:.0f} s\n{tail}")
        time.sleep(interval)


# -- the round-robin proxy -------------------------------------------------------------------

class RoundRobin:
    """Each new TCP connection goes to the next backend that accepts it."""

    def __init__(self, port: int, backends: list[int]) -> None:
        self.port = port
        self.backends = list(backends)
        self.served: Counter[int] = Counter()
        self._next = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="round-robin",
                                        daemon=True)

    def start(self) -> RoundRobin:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", self.port), self._loop).result(10)
        return self

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream = None
        for _ in range(len(self.backends)):
            port = self.backends[self._next % len(self.backends)]
            self._next += 1
            try:
                upstream = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                continue
            self.served[port] += 1
            break
        if upstream is None:  # every replica is down: the client sees its request dropped
            writer.close()
            return
        up_reader, up_writer = upstream
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer),
                             return_exceptions=True)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        with contextlib.suppress(Exception):
            writer.close()


# -- /proc -------------------------------------------------------------------------------------

def proc_environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


def proc_environ_bytes(pid: int) -> bytes:
    return Path(f"/proc/{pid}/environ").read_bytes()


def proc_cmdline(pid: int) -> list[str]:
    """The process's command line; [] once it is gone."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def _ppid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def descendants(root: int) -> list[int]:
    """Every live process below `root` (children first found, breadth first)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            ppid = _ppid(int(entry))
            if ppid is not None:
                parents.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        for child in parents.get(todo.pop(0), []):
            out.append(child)
            todo.append(child)
    return out


def find_process(root: int, match: Callable[[list[str]], bool]) -> int | None:
    """The first live descendant of `root` whose command line matches."""
    for pid in descendants(root):
        with contextlib.suppress(OSError):
            if match(proc_cmdline(pid)) and not _zombie(pid):
                return pid
    return None


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists() and not _zombie(pid)


def terminate(pids: list[int], timeout: float = 10.0) -> None:
    """SIGTERM these processes (started by the test, directly or by the hub), then SIGKILL
    those still alive."""
    import signal

    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while any(alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not any(alive(p) for p in pids):
            return


def files_holding(roots: list[Path], needles: list[str]) -> list[str]:
    """`path: needle` for every readable file under `roots` that contains a needle."""
    found = []
    wanted = [n.encode() for n in needles if n]
    for root in roots:
        for path in [root] if root.is_file() else root.rglob("*"):
            if not path.is_file() or path.is_symlink():
                continue
            try:
                data = path.read_bytes()
            except OSError:
                continue
            found += [f"{path}: {n.decode()[:12]}…" for n in wanted if n in data]
    return found


# -- a kernel through a user's server ----------------------------------------------------------

class KernelClient:
    """A kernel started through a single-user server's REST API and driven over its
    websocket, with the user's token (what JupyterLab does with its cookie)."""

    def __init__(self, server_url: str, token: str, kernel_name: str = "python3") -> None:
        import httpx

        self.server_url = server_url.rstrip("/") + "/"
        self.token = token
        resp = httpx.post(self.server_url + "api/kernels", json={"name": kernel_name},
                          headers=self._headers, timeout=60)
        resp.raise_for_status()
        self.id = resp.json()["id"]
        self.session = uuid.uuid4().hex

    @property
    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def execute(self, code: str, timeout: float = 120.0) -> dict[str, Any]:
        """Run one cell: {"status", "stdout", "stderr", "result", "error", "outputs"}."""
        return asyncio.run(self._execute(code, timeout))

    async def _execute(self, code: str, timeout: float) -> dict[str, Any]:
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        ws_url = (self.server_url.replace("http://", "ws://", 1)
                  + f"api/kernels/{self.id}/channels?session_id={self.session}")
        conn = await websocket_connect(HTTPRequest(ws_url, headers=self._headers,
                                                   connect_timeout=30))
        msg_id = uuid.uuid4().hex
        conn.write_message(json.dumps({
            "header": {"msg_id": msg_id, "username": "test", "session": self.session,
                       "msg_type": "execute_request", "version": "5.3",
                       "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": True,
                        "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
        }))
        out: dict[str, Any] = {"status": None, "stdout": "", "stderr": "", "result": None,
                               "error": None, "outputs": []}
        idle = False
        deadline = time.monotonic() + timeout
        try:
            while out["status"] is None or not idle:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"the kernel did not finish within {timeout} s: {code!r}")
                raw = await asyncio.wait_for(conn.read_message(), left)
                if raw is None:
                    raise ConnectionError("the kernel's websocket closed")
                msg = json.loads(raw)
                if msg.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind, content = msg["msg_type"], msg["content"]
                if kind == "stream":
                    out[content["name"]] += content["text"]
                elif kind in ("execute_result", "display_data", "update_display_data"):
                    out["outputs"].append(content.get("data", {}))
                    if kind == "execute_result":
                        out["result"] = content["data"].get("text/plain")
                elif kind == "error":
                    out["error"] = f"{content['ename']}: {content['evalue']}"
                elif kind == "execute_reply":
                    out["status"] = content["status"]
                    if content["status"] == "error" and out["error"] is None:
                        out["error"] = f"{content.get('ename')}: {content.get('evalue')}"
                elif kind == "status" and content["execution_state"] == "idle":
                    idle = True
        finally:
            conn.close()
        return out

    def shutdown(self) -> None:
        import httpx

        with contextlib.suppress(httpx.HTTPError):
            httpx.delete(self.server_url + f"api/kernels/{self.id}", headers=self._headers,
                         timeout=30)


# -- logging in to the hub --------------------------------------------------------------------

def login(hub_url: str, name: str, password: str) -> Any:
    """A browser-like session of `name` after the hub's login form (an httpx.Client with
    the hub's cookies), not following the redirect to spawn."""
    import httpx

    client = httpx.Client(base_url=hub_url, timeout=30)
    client.get("/hub/login")
    xsrf = client.cookies.get("_xsrf", "")
    resp = client.post("/hub/login", data={"username": name, "password": password,
                                           "_xsrf": xsrf})
    if resp.status_code != 302 or "jupyterhub-session-id" not in client.cookies:
        raise AssertionError(f"{name} could not log in: {resp.status_code} {resp.text[:300]}")
    return client


def new_token(session: Any, name: str) -> str:
    """A hub API token made by the logged-in user (their cookie + XSRF), as the hub's
    token page does."""
    xsrf = session.cookies.get("_xsrf", "")
    resp = session.post(f"/hub/api/users/{name}/tokens", json={"note": "aigis hub test"},
                        headers={"X-XSRFToken": xsrf})
    resp.raise_for_status()
    return resp.json()["token"]


# -- inside the service: the scripted model ------------------------------------------------------

def script_for(question: str) -> str:
    low = question.lower()
    return next((sql for word, sql in SCRIPTS if word in low), DEFAULT_SQL)


def _make_model() -> Any:
    from scripted import PromptRouted, question_of

    class ScriptedModel(PromptRouted):
        """SQL by words of the question; a short answer otherwise."""

        def sql(self, messages: list[Any]) -> str:
            return script_for(question_of(messages))

        def answer(self, messages: list[Any]) -> tuple[str, float]:
            return "Here is the answer.", 0.0

    return ScriptedModel()


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    return [{"module": "hub_util"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    from scripted import register_when_ready

    register_when_ready(serverapp, MODEL_NAME, _make_model)
