"""`POST /chat/{id}/message`: one chat turn as Server-Sent Events.

One JSON event per `data:` line with an `id:`, flushed as produced; a keep-alive comment
when nothing was sent for a while; errors raised before the first event (unknown thread,
a turn already running, an empty question) are plain JSON errors with their status, and
any failure after the stream began is an `error` event followed by `end`. A client that
goes away cancels the turn and its SQL; the turn still ends and stores both sides once.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from tornado.iostream import StreamClosedError

from ..errors import AigisError
from .base import AigisHandler, api

#: Seconds without an event after which a keep-alive comment is sent.
KEEPALIVE_S = 15.0
MESSAGE_FIELDS = ("text", "user_connection_id", "connection", "model", "chart", "sql_only")


class MessageHandler(AigisHandler):
    keepalive_s = KEEPALIVE_S

    @api
    async def post(self, thread_id: str) -> None:
        data = self.body(allowed=MESSAGE_FIELDS, required=("text",))
        text = self.field(data, "text", str)
        conn = self.field(data, "user_connection_id", str) or self.field(data, "connection", str)
        scope = await self.scope()
        events = scope.chat(thread_id, text, connection=conn,
                            model=self.field(data, "model", str),
                            chart=self.field(data, "chart", bool, True),
                            sql_only=self.field(data, "sql_only", bool, False)).__aiter__()
        first = await events.__anext__()  # refusals before the turn starts: a JSON error
        self.thread_id, self.sent, self.gone = thread_id, 0, False
        self.set_status(200)
        self.set_header("Content-Type", "text/event-stream; charset=utf-8")
        self.set_header("X-Accel-Buffering", "no")  # proxies must not buffer the stream
        keepalive = asyncio.ensure_future(self._keep_alive())
        ended = False
        try:
            await self._send(first)
            async for event in events:
                ended = ended or event.get("type") == "end"
                await self._send(event)
        except AigisError as exc:
            await self._send({"type": "error", **exc.to_dict()})
        except Exception as exc:
            self.log.exception("aigis: chat stream failed")
            await self._send({"type": "error", "reason": "server_error",
                              "message": f"The answer stopped unexpectedly ({type(exc).__name__})."
                              " Ask again."})
        finally:
            keepalive.cancel()
        if not ended:
            await self._send({"type": "end", "full_response": ""})
        if not self.gone:
            self.finish(set_content_type="text/event-stream; charset=utf-8")

    async def _send(self, event: Any) -> None:
        if self.gone:
            return
        self.sent += 1
        self.write(f"id: {self.sent}\ndata: {json.dumps(event, default=str)}\n\n")
        await self._flush()

    async def _flush(self) -> None:
        self._last_write = asyncio.get_running_loop().time()
        try:
            await self.flush()
        except StreamClosedError:
            self._client_gone()

    async def _keep_alive(self) -> None:
        loop = asyncio.get_running_loop()
        self._last_write = loop.time()
        while not self.gone:
            await asyncio.sleep(max(0.05, self._last_write + self.keepalive_s - loop.time()))
            if loop.time() - self._last_write >= self.keepalive_s and not self.gone:
                self.write(": keep-alive\n\n")
                await self._flush()

    def on_connection_close(self) -> None:
        self._client_gone()

    def _client_gone(self) -> None:
        """The client left: stop the turn (its SQL too); it ends and is stored as cancelled."""
        if getattr(self, "gone", True):
            return
        self.gone = True
        self.log.info("aigis: client left thread %s mid-answer; cancelling", self.thread_id)
        self._cancelling = asyncio.ensure_future(self._cancel())

    async def _cancel(self) -> None:
        try:
            await (await self.scope()).cancel(self.thread_id)
        except Exception:
            self.log.warning("aigis: could not cancel thread %s", self.thread_id, exc_info=True)
