"""A real `jupyter server` for the server benchmarks (B4-sse, B5, B11): a subprocess of this
environment's `jupyter`, on 127.0.0.1 and a free port, with every Jupyter directory and the
store (`AIGIS_DATA_DIR`) in a temporary directory, token authentication, and no model keys.

`bench_ext=True` also loads `benchmarks.server_ext` (the scripted model, a bare SSE route
and a GC route), as a second server extension. Clients here speak raw HTTP/1.1 over
asyncio streams, so nothing buffers between the server and the clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from .common import ROOT

JUPYTER = Path(sys.executable).parent / "jupyter"
#: Environment a benchmark server must not see: a turn must never reach a real model.
MODEL_ENV = ("OPENAI_API_KEY", "DEEPSEEK_API_KEY", "GOOGLE_API_KEY", "LM_STUDIO_ENDPOINT",
             "AIGIS_DEFAULT_MODEL", "AIGIS_DATABASE_URL", "AIGIS_EXTRA_MODELS",
             "AIGIS_ALLOWED_MODELS", "JUPYTERHUB_API_TOKEN", "JUPYTERHUB_USER")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class JupyterServer:
    """One `jupyter server` process; `start()` returns the seconds until /api/status said 200."""

    def __init__(self, tmp: Path, *, aigis: bool = True, bench_ext: bool = False,
                 args: tuple[str, ...] = ()) -> None:
        self.tmp = tmp
        self.aigis = aigis
        self.bench_ext = bench_ext
        self.args = args
        self.token = secrets.token_hex(16)
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = tmp / "server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def _env(self) -> dict[str, str]:
        dirs = {n: self.tmp / n for n in ("config", "data", "runtime", "root", "aigis")}
        for d in dirs.values():
            d.mkdir(parents=True, exist_ok=True)
        extensions = {"aigis_jupyter": self.aigis}
        if self.bench_ext:
            extensions["benchmarks.server_ext"] = True
        (dirs["config"] / "jupyter_server_config.json").write_text(json.dumps(
            {"ServerApp": {"jpserver_extensions": extensions}}))
        env = {k: v for k, v in os.environ.items() if k not in MODEL_ENV}
        env.update({
            "JUPYTER_CONFIG_DIR": str(dirs["config"]), "JUPYTER_DATA_DIR": str(dirs["data"]),
            "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]), "AIGIS_DATA_DIR": str(dirs["aigis"]),
            "MASTER_ENCRYPTION_KEY": "benchmark-key",
            "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p),
        })
        return env

    def command(self) -> list[str]:
        args = [str(JUPYTER), "server", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
                "--ServerApp.port_retries=0", f"--ServerApp.root_dir={self.tmp / 'root'}",
                f"--IdentityProvider.token={self.token}", *self.args]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.append("--allow-root")
        return args

    def start(self, timeout: float = 90.0) -> float:
        self.port = free_port()
        env = self._env()
        log = self.log_path.open("ab")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(self.command(), env=env, stdout=log,
                                     stderr=subprocess.STDOUT, cwd=self.tmp)
        log.close()
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter server exited {self.proc.returncode}: "
                                   f"{self.log_tail()}")
            with contextlib.suppress(OSError):
                if self.get("api/status", timeout=2)[0] == 200:
                    return time.perf_counter() - t0
            if time.perf_counter() - t0 > timeout:
                raise RuntimeError(f"jupyter server never answered: {self.log_tail()}")
            time.sleep(0.005)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    # -- plain requests (setup, not timed) ---------------------------------------------------
    def request(self, method: str, path: str, body: Any = None, timeout: float = 60
                ) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={**self.headers, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            return exc.code, json.loads(raw) if raw else None

    def get(self, path: str, timeout: float = 60) -> tuple[int, Any]:
        return self.request("GET", path, timeout=timeout)

    def call(self, method: str, path: str, body: Any = None) -> Any:
        status, out = self.request(method, path, body)
        if status >= 300:
            raise RuntimeError(f"{method} {path} -> {status}: {out}")
        return out

    def cpu_s(self) -> float:
        """CPU time (user + system) the server process has used so far (Linux)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_kb(self) -> int:
        """The server process's resident set size now (Linux), in KiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def __enter__(self) -> JupyterServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


async def sse_events(port: int, path: str, body: Any, token: str
                     ) -> AsyncIterator[tuple[float, dict[str, Any]]]:
    """POST over a raw HTTP/1.1 connection; yield (time.monotonic() at arrival, event) for
    every `data:` line as it comes. A non-200 answer raises with its body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        data = json.dumps(body).encode()
        head = (f"POST /{path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Authorization: token {token}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\n\r\n")
        writer.write(head.encode() + data)
        await writer.drain()
        status = (await reader.readline()).decode()
        headers: dict[str, str] = {}
        while (line := (await reader.readline()).decode().strip()):
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        if " 200 " not in status:
            rest = await reader.read(65536)
            raise RuntimeError(f"{status.strip()}: {rest[:500]!r}")
        chunked = headers.get("transfer-encoding") == "chunked"
        buf = ""
        while True:
            if chunked:
                size = int((await reader.readline()).strip() or b"0", 16)
                if size == 0:
                    return
                piece = (await reader.readexactly(size + 2))[:-2].decode()
            else:
                piece = (await reader.read(65536)).decode()
                if not piece:
                    return
            arrived = time.monotonic()
            buf += piece
            while "\n\n" in buf:
                block, buf = buf.split("\n\n", 1)
                for line in block.splitlines():
                    if line.startswith("data: "):
                        yield arrived, json.loads(line[6:])
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


# --------------------------------------------------------------------------- shared server

QUESTION = "How many customers are there?"


def bench_server(ctx: Any) -> JupyterServer:
    """The server B4-sse and B5 share: the extension, the scripted models, a Chinook copy
    saved as connection `chinook`, and one turn already answered (imports done)."""

    def make(ctx: Any) -> JupyterServer:
        import shutil

        from .common import chinook_spec, tmpdir

        tmp = tmpdir(ctx, "aigis_srv_")
        db = tmp / "chinook.sqlite"
        shutil.copy(chinook_spec().host, db)
        srv = JupyterServer(tmp, bench_ext=True, args=("--AigisExtension.warm_up=False",))
        ctx.stack.callback(srv.stop)
        took = srv.start()
        srv.call("POST", "aigis/connections", {"name": "chinook", "db_type": "sqlite",
                                                "host": str(db)})
        tid = new_thread(srv, "scripted")
        t0 = time.perf_counter()
        asyncio.run(drain(srv, tid))
        ctx.log(f"server up in {took:.2f} s; first turn (imports) {time.perf_counter() - t0:.2f} s")
        return srv

    return ctx.once("jupyter_server", make)


def release_bench_server(ctx: Any) -> None:
    srv = ctx.shared.pop("jupyter_server", None)
    if srv is not None:
        srv.stop()


def new_thread(srv: JupyterServer, model: str) -> str:
    return str(srv.call("POST", "aigis/chat/thread",
                        {"connection": "chinook", "model": model})["id"])


async def drain(srv: JupyterServer, thread_id: str, text: str = QUESTION
                ) -> list[tuple[float, dict[str, Any]]]:
    """One turn over SSE, every event with its arrival time; an `error` event raises."""
    got = []
    async for arrived, event in sse_events(srv.port, f"aigis/chat/{thread_id}/message",
                                           {"text": text, "chart": False}, srv.token):
        if event.get("type") == "error":
            raise RuntimeError(f"the turn failed: {event}")
        got.append((arrived, event))
    if not got or got[-1][1].get("type") != "end":
        raise RuntimeError(f"the stream ended without `end`: {got[-3:]}")
    return got
