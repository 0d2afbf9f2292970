"""Calling the extension's routes in tests: as a user, with JSON in and out."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server_users import TestUsers, token_of
from traitlets.config import Config


def server_config(data_dir: Path, master_key: str, **aigis: Any) -> Config:
    """A jp_serverapp with the extension alone, the test users (root the admin) signed in
    by token, its store in `data_dir`, and these further `AigisExtension` traits."""
    return Config({
        "ServerApp": {"jpserver_extensions": {"aigis_jupyter": True,
                                              "jupyter_server_terminals": False},
                      "allow_unauthenticated_access": False,
                      "identity_provider_class": TestUsers},
        "AigisExtension": {"user_source": "jupyter", "admin_users": ["root"],
                           "single_user_admin": False, "warm_up": False,
                           "data_dir": str(data_dir), "master_keys": [master_key], **aigis},
    })


@dataclass
class Reply:
    status: int
    body: bytes
    headers: Any

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def events(self) -> list[dict[str, Any]]:
        """The JSON events of a Server-Sent Events body."""
        out = []
        for block in self.body.decode().split("\n\n"):
            for line in block.splitlines():
                if line.startswith("data: "):
                    out.append(json.loads(line[6:]))
        return out


def caller(jp_fetch: Any) -> Any:
    async def call(user: str | None, method: str, path: str, body: Any = None,
                   params: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
                   raw: bytes | None = None) -> Reply:
        hdrs = {"Authorization": f"token {token_of(user)}" if user else ""}
        hdrs.update(headers or {})
        data = raw if raw is not None else (None if body is None else json.dumps(body))
        if data is None and method in ("POST", "PUT", "PATCH"):
            data = ""
        resp = await jp_fetch("aigis", *path.strip("/").split("/"), method=method, body=data,
                              headers=hdrs, params=params, raise_error=False,
                              allow_nonstandard_methods=True)
        return Reply(resp.code, resp.body or b"", resp.headers)

    return call


async def sse(port: int, base_url: str, path: str, body: dict[str, Any], user: str) -> Any:
    """POST over a raw HTTP/1.1 connection and yield (arrival time, event) as they come, so a
    test sees streaming as a client does (no client library buffering in between).

    Returns (events iterator, writer): close the writer to hang up mid-stream."""
    import asyncio

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    data = json.dumps(body).encode()
    head = (f"POST {base_url}aigis/{path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: token {token_of(user)}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n")
    writer.write(head.encode() + data)
    await writer.drain()
    status = (await reader.readline()).decode()
    headers: dict[str, str] = {}
    while (line := (await reader.readline()).decode().strip()):
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()

    async def events() -> Any:
        loop = asyncio.get_running_loop()
        buf = ""
        chunked = headers.get("transfer-encoding") == "chunked"
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
            buf += piece
            while "\n\n" in buf:
                block, buf = buf.split("\n\n", 1)
                for line in block.splitlines():
                    if line.startswith("data: "):
                        yield loop.time(), json.loads(line[6:])

    return status, headers, events(), writer
