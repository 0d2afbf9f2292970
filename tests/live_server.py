"""A real `jupyter server` with the extension, in its own process, for tests that need a
server outside the test's event loop (remote clients, forwarding)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

JUPYTER = Path(sys.executable).parent / "jupyter"
#: Debian's Chromium (`apt-get install chromium`; Playwright's own browser download fails here).
CHROMIUM = os.environ.get("AIGIS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def log_tail(log: Path, n: int = 60) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


def stop_server(proc: subprocess.Popen, runtime_dir: Path) -> None:
    """Stop a server's process group (it shuts its kernels down on SIGTERM), then any kernel
    left with a connection file in this test's runtime dir, and only those."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    for pid_dir in Path("/proc").glob("[0-9]*"):
        try:
            cmd = (pid_dir / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(arg.startswith(str(runtime_dir).encode() + b"/kernel-") for arg in cmd):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid_dir.name), signal.SIGKILL)


@contextmanager
def live_server(tmp: Path, token: str, *, env: dict[str, str] | None = None,
                args: list[str] | None = None) -> Iterator[str]:
    """Start a server; yields its root URL. Everything it writes stays under `tmp`."""
    port = free_port()
    tmp.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp / "config"),
                "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"), "AIGIS_DATA_DIR": str(tmp / "data"),
                **(env or {})}
    cmd = [str(JUPYTER), "server", "--no-browser", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp}",
           "--AigisExtension.warm_up=False", *(args or [])]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    log = open(tmp / "server.log", "w")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(cmd, env=full_env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                req = urllib.request.Request(url + "api/status",
                                             headers={"Authorization": f"token {token}"})
                urllib.request.urlopen(req, timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((tmp / "server.log").read_text()[-3000:]) from None
                time.sleep(0.2)
        yield url
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
