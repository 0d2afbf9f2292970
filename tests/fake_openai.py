"""A scripted OpenAI-compatible server for tests: real HTTP on 127.0.0.1, one thread.

Each `POST /v1/chat/completions` takes the next `Step` of the script and answers it,
streamed (SSE over chunked HTTP/1.1) when the request asks `stream: true`, as one JSON
body otherwise; `GET /v1/models` lists one model. Besides normal replies a step can be a
fault: an HTTP error with `Retry-After`, a hang, a tool call with broken arguments, a body
that is not JSON, a stream that never ends, a stream cut mid-way. Every request is
recorded (in arrival order) with what was done to it and whether the client hung up, so a
test counts retries and checks that a connection was really closed.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: The longest an endless stream or a hang lasts when nobody stops it (a broken product
#: then fails its test instead of keeping this thread forever).
SAFETY_S = 60.0


@dataclass(frozen=True)
class Step:
    """What the server does with one chat request."""

    kind: str  # reply, status, hang, tool_call, not_json, endless, cut
    text: str = ""
    status: int = 200
    retry_after: str | None = None
    seconds: float = 0.0
    name: str = ""
    arguments: str = ""
    pieces: int = 0


def reply(text: str) -> Step:
    """A normal answer, streamed word by word when streaming was asked."""
    return Step("reply", text=text)


def status(code: int, retry_after: str | None = None) -> Step:
    """An HTTP error with an OpenAI-style JSON error body (and `Retry-After` if given)."""
    return Step("status", status=code, retry_after=retry_after)


def hang(seconds: float) -> Step:
    """Say nothing for `seconds` (longer than the client's timeout), then answer."""
    return Step("hang", seconds=seconds, text="too late")


def tool_call(name: str, arguments: str) -> Step:
    """A reply that is a tool call: `arguments` is sent as written (it may not be JSON)."""
    return Step("tool_call", name=name, arguments=arguments)


def not_json() -> Step:
    """HTTP 200 whose body (or, streamed, whose SSE data) is not JSON."""
    return Step("not_json")


def endless(piece: str = "and so on ") -> Step:
    """A stream that sends `piece` again and again until the client disconnects."""
    return Step("endless", text=piece)


def cut(text: str, pieces: int = 2) -> Step:
    """A stream that sends the first `pieces` words of `text`, then drops the connection."""
    return Step("cut", text=text, pieces=pieces)


@dataclass
class Seen:
    """One request as the server saw it."""

    method: str
    path: str
    body: dict[str, Any]
    step: str
    at: float = field(default_factory=time.monotonic)  # for ordering, not for timing tests
    done_at: float | None = None  # when the answer was fully written (or the client left)
    disconnected: bool = False  # the client hung up while we were still sending
    completed: bool = False  # the answer was sent to its end

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))


class FakeOpenAI:
    """The server: `script(...)` the next answers, read `requests` afterwards."""

    def __init__(self, model: str = "fake-model") -> None:
        self.model = model
        self.requests: list[Seen] = []
        self._steps: deque[Step] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True,
                                        name="fake-openai")

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def root(self) -> str:
        """`http://127.0.0.1:PORT` (what an operator puts in LM_STUDIO_ENDPOINT)."""
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def url(self) -> str:
        return self.root + "/v1"

    # -- script and record ----------------------------------------------------------------
    def script(self, *steps: Step | str) -> None:
        """Queue answers, one per chat request (a plain string is a normal reply)."""
        with self._lock:
            self._steps.extend(reply(s) if isinstance(s, str) else s for s in steps)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._steps)

    def chats(self) -> list[Seen]:
        """The chat requests so far, in arrival order."""
        with self._lock:
            return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def wait_for(self, check: Callable[[], bool], within_s: float = 15.0) -> bool:
        """Whether `check()` becomes true within `within_s` (a bound, not a measurement)."""
        end = time.monotonic() + within_s
        while time.monotonic() < end:
            if check():
                return True
            time.sleep(0.02)
        return check()

    def _next(self, seen: Seen) -> Step:
        with self._lock:
            step = self._steps.popleft() if self._steps else Step(
                "status", status=500, text="the test scripted no answer for this request")
            seen.step = step.kind if step.kind != "status" else f"status {step.status}"
            self.requests.append(seen)
            return step


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client hanging up is part of the tests; anything else is reported."""
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


def _handler_for(server: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        fake = server

    return Handler


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # chunked streams, so a cut stream is visibly incomplete
    fake: FakeOpenAI

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass

    # -- routes ---------------------------------------------------------------------------
    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            with self.fake._lock:
                self.fake.requests.append(Seen("GET", self.path, {}, "models", completed=True))
            self._json(200, {"object": "list", "data": [
                {"id": self.fake.model, "object": "model", "owned_by": "test"}]})
            return
        self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._json(400, {"error": {"message": "the request is not JSON", "type": "bad"}})
            return
        seen = Seen("POST", self.path, body, "")
        step = self.fake._next(seen)
        try:
            getattr(self, f"_do_{step.kind}")(step, seen)
        except (TimeoutError, BrokenPipeError, ConnectionResetError):
            seen.disconnected = True
            self.close_connection = True
        finally:
            seen.done_at = time.monotonic()

    # -- answers --------------------------------------------------------------------------
    def _do_reply(self, step: Step, seen: Seen) -> None:
        if seen.stream:
            self._stream(seen, [{"role": "assistant", "content": ""}]
                         + [{"content": w} for w in _words(step.text)], "stop")
        else:
            self._json(200, self._completion({"role": "assistant", "content": step.text},
                                             "stop"))
        seen.completed = True

    def _do_status(self, step: Step, seen: Seen) -> None:
        extra = {"Retry-After": step.retry_after} if step.retry_after is not None else {}
        kind = {429: "rate_limit_exceeded"}.get(step.status, "server_error")
        message = step.text or f"scripted HTTP {step.status}"
        self._json(step.status, {"error": {"message": message, "type": kind, "code": kind}},
                   extra)
        seen.completed = True

    def _do_hang(self, step: Step, seen: Seen) -> None:
        self.fake._stop.wait(min(step.seconds, SAFETY_S))
        self._do_reply(step, seen)

    def _do_tool_call(self, step: Step, seen: Seen) -> None:
        call = {"index": 0, "id": f"call_{uuid.uuid4().hex[:8]}", "type": "function",
                "function": {"name": step.name, "arguments": step.arguments}}
        if seen.stream:
            self._stream(seen, [{"role": "assistant", "content": None, "tool_calls": [call]}],
                         "tool_calls")
        else:
            call.pop("index")
            self._json(200, self._completion(
                {"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls"))
        seen.completed = True

    def _do_not_json(self, step: Step, seen: Seen) -> None:
        if seen.stream:
            self._start_stream()
            self._chunk(b'data: {"id": "chatcmpl-x", "choices": [{"delta": \n\n')
            self._chunk(b"data: <html>Bad gateway</html>\n\n")
            self._chunk(b"")
        else:
            body = b'{"id": "chatcmpl-x", "choices": [{"message": <html>Bad gateway'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        seen.completed = True

    def _do_endless(self, step: Step, seen: Seen) -> None:
        self._start_stream()
        self._event(self._chunk_body({"role": "assistant", "content": ""}, None))
        end = time.monotonic() + SAFETY_S
        while not self.fake._stop.is_set() and time.monotonic() < end:
            self._event(self._chunk_body({"content": step.text}, None))
            time.sleep(0.002)
        self.close_connection = True

    def _do_cut(self, step: Step, seen: Seen) -> None:
        self._start_stream()
        self._event(self._chunk_body({"role": "assistant", "content": ""}, None))
        for w in _words(step.text)[: step.pieces]:
            self._event(self._chunk_body({"content": w}, None))
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)  # no last chunk: the body is incomplete

    # -- wire -----------------------------------------------------------------------------
    def _completion(self, message: dict[str, Any], finish: str) -> dict[str, Any]:
        return {"id": f"chatcmpl-{uuid.uuid4().hex[:8]}", "object": "chat.completion",
                "created": int(time.time()), "model": self.fake.model,
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}

    def _chunk_body(self, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return {"id": "chatcmpl-stream", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": self.fake.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    def _json(self, code: int, payload: dict[str, Any],
              headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _chunk(self, data: bytes) -> None:
        """One HTTP chunk (an empty one ends the body)."""
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _event(self, payload: dict[str, Any]) -> None:
        self._chunk(f"data: {json.dumps(payload)}\n\n".encode())

    def _stream(self, seen: Seen, deltas: list[dict[str, Any]], finish: str) -> None:
        self._start_stream()
        for delta in deltas:
            self._event(self._chunk_body(delta, None))
        self._event(self._chunk_body({}, finish))
        self._chunk(b"data: [DONE]\n\n")
        self._chunk(b"")


def _words(text: str) -> list[str]:
    """`text` in word-sized pieces that join back to it exactly."""
    out: list[str] = []
    for i, w in enumerate(text.split(" ")):
        out.append(w if i == 0 else " " + w)
    return [w for w in out if w]


def serve() -> Iterator[FakeOpenAI]:
    """For a pytest fixture: a started server, closed afterwards."""
    with FakeOpenAI() as fake:
        yield fake
