"""A second Jupyter server extension for the server benchmarks only (never shipped), loaded
next to `aigis_jupyter` by `jserver.JupyterServer(bench_ext=True)`:

* the scripted models, registered in the extension's service when it is built:
  `stamped` (B4-sse) writes the answer one word every 20 ms and appends to each word the
  `time.monotonic()` at which it emitted it (before the word's closing stop), spelt in
  letters (`[tbcdk...]`: digits as a-j, the point as k) so that the answer's check
  against its result sees no number in it; `scripted` (B5) is the same model without
  stamps. Both answer the SQL call with `SELECT COUNT(*) … FROM Customer`;
* `POST /aigis-bench/sse?n=&delay=`: a bare Server-Sent Events handler writing stamped
  `chunk` events from the event loop every `delay` seconds: B4-sse's baseline, the
  transport's own floor on the same server and connection;
* `POST /aigis-bench/gc`: a full garbage collection in the server, then its RSS (B5).

Linux's CLOCK_MONOTONIC (`time.monotonic()`) is one clock for every process of the
machine, so a stamp taken in the server compares with one taken in the client.
"""

from __future__ import annotations

import asyncio
import gc
import json
import re
import time
from pathlib import Path
from typing import Any

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

STAMP = re.compile(r"\[t([a-k]+)\]")
TOKEN_DELAY_S = 0.020
SQL = "SELECT COUNT(*) AS customers FROM Customer"
_SPELL = str.maketrans("0123456789.", "abcdefghijk")
_READ = str.maketrans("abcdefghijk", "0123456789.")


def stamp() -> str:
    return f"[t{f'{time.monotonic():.6f}'.translate(_SPELL)}]"


def stamps(text: str) -> list[float]:
    return [float(s.translate(_READ)) for s in STAMP.findall(text)]


def _models() -> list[Any]:
    from langchain_core.outputs import ChatGenerationChunk

    from .b4_stream import ANSWER, SHORT_ANSWER
    from .scripted import ScriptedModel, text_of, tokens

    def is_sql_call(messages: list[Any]) -> bool:
        return "Schema:" in text_of(messages[0].content)

    def respond(messages: list[Any]) -> str:
        return SQL if is_sql_call(messages) else ANSWER

    class QuietModel(ScriptedModel):
        """Keeps no record of its calls: the server's memory must not grow with them (B5)."""

        def _reply(self, messages: list[Any], kwargs: dict[str, Any]) -> Any:
            from langchain_core.messages import AIMessage

            return AIMessage(content=str(self.responder(list(messages))))

    class StampedModel(QuietModel):
        """Each answer word carries the moment it was emitted."""

        def _stream(self, messages: list[Any], stop: Any = None, run_manager: Any = None,
                    **kwargs: Any) -> Any:
            if is_sql_call(messages):
                yield from super()._stream(messages, stop, run_manager, **kwargs)
                return
            from langchain_core.messages import AIMessageChunk

            reply = self._reply(messages, kwargs)
            for tok in tokens(text_of(reply.content)):
                time.sleep(self.token_delay)
                # the stamp before a word's closing stop: "count[t...]." still ends a sentence
                word, stop = re.match(r"(.*?)([.!?,;:]*\s*)$", tok, re.S).groups()
                yield ChatGenerationChunk(
                    message=AIMessageChunk(content=f"{word}{stamp()}{stop}"))

    def respond_short(messages: list[Any]) -> str:
        return SQL if is_sql_call(messages) else SHORT_ANSWER

    return [("stamped", StampedModel(responder=respond, token_delay=TOKEN_DELAY_S)),
            ("scripted", QuietModel(responder=respond_short, token_delay=TOKEN_DELAY_S))]


def _register(service: Any) -> None:
    from .scripted import register

    for name, model in _models():
        register(service.models, model, name)


class BareSSEHandler(APIHandler):
    """Stamped chunks straight from the event loop: the floor B4-sse is compared with."""

    @web.authenticated
    async def post(self) -> None:
        n = int(self.get_argument("n", "20"))
        delay = float(self.get_argument("delay", str(TOKEN_DELAY_S)))
        self.set_header("Content-Type", "text/event-stream; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        for i in range(n):
            await asyncio.sleep(delay)
            event = {"type": "chunk", "content": f" w{i} {stamp()}"}
            self.write(f"id: {i + 1}\ndata: {json.dumps(event)}\n\n")
            await self.flush()
        self.write(f"id: {n + 1}\ndata: {json.dumps({'type': 'end', 'full_response': ''})}\n\n")
        await self.flush()
        self.finish(set_content_type="text/event-stream; charset=utf-8")


class GCHandler(APIHandler):
    """A full collection, then the RSS; then glibc's `malloc_trim(0)` (free heap pages back
    to the system) and the RSS again: what stays is memory still in use or fragmented."""

    @web.authenticated
    async def post(self) -> None:
        collected = gc.collect()
        rss = _rss_kb()
        trimmed = None
        try:
            import ctypes

            ctypes.CDLL("libc.so.6").malloc_trim(0)
            trimmed = _rss_kb()
        except (OSError, AttributeError):  # not glibc
            pass
        self.finish(json.dumps({"collected": collected, "rss_kb": rss,
                                "trimmed_rss_kb": trimmed}))


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    return [{"module": "benchmarks.server_ext"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    from aigis_jupyter.server.state import ServerState

    real = ServerState.service

    def service(self: Any) -> Any:
        svc = real(self)
        if not getattr(svc, "_bench_models", False):
            _register(svc)
            svc._bench_models = True
        return svc

    ServerState.service = service  # type: ignore[method-assign]
    base = serverapp.web_app.settings["base_url"]
    serverapp.web_app.add_handlers(".*$", [
        (url_path_join(base, "aigis-bench", "sse"), BareSSEHandler),
        (url_path_join(base, "aigis-bench", "gc"), GCHandler),
    ])
