"""A real IPython kernel for tests of the notebook door in its own process: its own data dir
and runtime dir, no hub settings inherited, this directory on its path, its output and log
kept for the test to read.
"""

from __future__ import annotations

import json
import os
import queue
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parent
#: The extension loaded, and the scripted `echo` model (echo_model.py) in its service.
ECHO_SETUP = """
%load_ext aigis_jupyter
from echo_model import EchoModel
from aigis_jupyter.models import ModelInfo
_m = get_ipython().magics_manager.registry["AigisMagics"]
_m.scope.service.models.register(ModelInfo(name="echo", provider="test",
                                           supports_tools=False), EchoModel)
"""


class Kernel:
    """Runs cells, answers input prompts, and keeps every output message's content."""

    def __init__(self, manager: Any, client: Any, log: Path) -> None:
        self.manager, self.client, self.log = manager, client, log
        self.outputs: list[str] = []  # every iopub content and input prompt, as JSON

    def start(self, code: str) -> str:
        return str(self.client.execute(code, allow_stdin=True))

    def wait(self, msg_id: str, *, answer: str | None = None,
             limit_s: float = 120) -> list[dict[str, Any]]:
        """The cell's output messages once it is idle; `answer` goes to its input prompt."""
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            if answer is not None:
                try:
                    req = self.client.get_stdin_msg(timeout=0.2)
                    self.outputs.append(json.dumps(req["content"]))
                    self.client.input(answer)
                    answer = None
                except queue.Empty:
                    pass
            try:
                msg = self.client.get_iopub_msg(timeout=0.2 if answer is not None else 1)
            except queue.Empty:
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return got
            got.append(msg)
            self.outputs.append(json.dumps(msg["content"]))
        raise AssertionError(f"the cell never finished: {got}")

    def run(self, code: str, *, answer: str | None = None) -> list[dict[str, Any]]:
        return self.wait(self.start(code), answer=answer)

    def interrupt(self) -> None:
        self.manager.interrupt_kernel()


def text(msgs: list[dict[str, Any]]) -> str:
    return "\n".join(json.dumps(m["content"]) for m in msgs)


def failed(msgs: list[dict[str, Any]]) -> bool:
    return "error" in [m["msg_type"] for m in msgs]


@contextmanager
def kernel(tmp: Path, **env: str) -> Iterator[Kernel]:
    """A started kernel whose Aigis data lives in `tmp/data`; its log is `tmp/kernel.log`."""
    from jupyter_client.manager import KernelManager

    full = {**os.environ, "AIGIS_DATA_DIR": str(tmp / "data"), "PYTHONPATH": str(TESTS),
            "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"), **env}
    for name in ("AIGIS_SERVICE_URL", "JUPYTERHUB_API_TOKEN", "AIGIS_DATABASE_URL"):
        full.pop(name, None)
    km = KernelManager(kernel_name="python3")
    log_path = tmp / "kernel.log"
    with log_path.open("wb") as log:
        km.start_kernel(env=full, stdout=log, stderr=log, cwd=str(tmp))
        kc = km.client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=60)
            yield Kernel(km, kc, log_path)
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
