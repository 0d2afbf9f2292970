"""Hub mode, on a user's own Jupyter server: every `aigis/` route forwards to the hub's
Aigis service with this server's hub token, which acts for its user.

So the sidebar talks to its own server as in local mode, while no secret and no other
user's row is ever in this process. Streams are forwarded chunk by chunk; a browser that
hangs up closes the upstream request, and the service then cancels the turn.
"""

from __future__ import annotations

import os

from tornado.iostream import StreamClosedError

from ..client import service_url
from ..errors import ServiceUnavailable
from .base import AigisHandler, api

#: Request headers passed on (identity is this server's token, never the browser's cookies).
FORWARDED_REQUEST = ("Content-Type", "Accept")
#: Response headers passed back.
FORWARDED_RESPONSE = ("Content-Type", "Cache-Control", "X-Accel-Buffering", "Allow")


class ProxyHandler(AigisHandler):
    """Forwards one request to the service and its answer back, streaming."""

    async def _forward(self, path: str) -> None:
        import httpx

        base = service_url()
        token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
        headers = {h: v for h in FORWARDED_REQUEST if (v := self.request.headers.get(h))}
        headers["Authorization"] = f"token {token}"
        url = f"{base}aigis/{path}"
        timeout = httpx.Timeout(30.0, read=None)  # an answer may think for a while
        query = [(k, v.decode()) for k, vs in self.request.query_arguments.items() for v in vs]
        try:
            async with httpx.AsyncClient(timeout=timeout) as http, http.stream(
                    self.request.method or "GET", url, params=query,
                    content=self.request.body or None, headers=headers) as resp:
                self.set_status(resp.status_code)
                for h in FORWARDED_RESPONSE:
                    if h in resp.headers:
                        self.set_header(h, resp.headers[h])
                async for chunk in resp.aiter_raw():
                    self.write(chunk)
                    try:
                        await self.flush()
                    except StreamClosedError:
                        return  # leaving the block closes the upstream request too
        except httpx.TransportError as exc:
            raise ServiceUnavailable(
                f"The Aigis service of this JupyterHub is not answering ({type(exc).__name__});"
                " it may be restarting. Try again in a moment.",
                action={"kind": "retry"}) from None
        self.finish(set_content_type=self._headers.get("Content-Type", "application/json"))

    @api
    async def get(self, path: str) -> None:
        await self._forward(path)

    @api
    async def post(self, path: str) -> None:
        await self._forward(path)

    @api
    async def put(self, path: str) -> None:
        await self._forward(path)

    @api
    async def delete(self, path: str) -> None:
        await self._forward(path)


def proxy_routes(prefix: str) -> list[tuple[str, type]]:
    return [(prefix + "/(.*)", ProxyHandler)]
