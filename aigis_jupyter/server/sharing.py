"""Routes for what hub mode adds: running your own SQL (kernels' `%aigis sql`), sharing
connections, and the demo database beside the service."""

from __future__ import annotations

import asyncio
import json

from ..errors import BadInput
from .base import AigisHandler, api
from .results import ARROW_STREAM, arrow_bytes, json_page


class QueryHandler(AigisHandler):
    @api
    async def post(self, ref: str) -> None:
        """Run your own SQL through the guard, the row cap and the audit; the result as Arrow
        (its SQL and flags in the schema's `aigis` metadata) or as JSON."""
        data = self.body(allowed=("sql", "max_rows", "thread_id"), required=("sql",))
        scope = await self.scope()
        res = await scope.run_sql(ref, self.field(data, "sql", str),
                                  max_rows=self.field(data, "max_rows", int),
                                  thread_id=self.field(data, "thread_id", str))
        meta = {"sql": res.sql, "row_count": res.row_count, "truncated": res.truncated,
                "duration_ms": res.duration_ms}
        if ARROW_STREAM in (self.request.headers.get("Accept") or ""):
            body = await asyncio.to_thread(arrow_bytes, res.df, {"aigis": json.dumps(meta)})
            self.finish(body, set_content_type=ARROW_STREAM)
            return
        rows = await asyncio.to_thread(json_page, res.df, 0, len(res.df))
        self.reply({**meta, "columns": [str(c) for c in res.df.columns], "rows": rows})


class GrantsHandler(AigisHandler):
    @api
    async def get(self, ref: str) -> None:
        self.reply(await (await self.scope()).connection_grants(ref))

    @api
    async def post(self, ref: str) -> None:
        """Share with `{"user": NAME}` or `{"group": NAME}` (administrators)."""
        data = self.body(allowed=("user", "group"))
        scope = await self.scope()
        self.reply(await scope.grant_connection(ref, user=self.field(data, "user", str),
                                                group=self.field(data, "group", str)))

    @api
    async def delete(self, ref: str) -> None:
        """Stop sharing with `?user=NAME` or `?group=NAME`."""
        user, group = self.get_argument("user", None), self.get_argument("group", None)
        if not user and not group:
            raise BadInput("Say whom to stop sharing with: ?user=NAME or ?group=NAME.")
        scope = await self.scope()
        self.reply(await scope.revoke_connection(ref, user=user, group=group))


class DemoHandler(AigisHandler):
    @api
    async def post(self) -> None:
        """Build the demo database beside the service and register it for you."""
        data = self.body(allowed=("name",))
        scope = await self.scope()
        self.reply(await scope.ensure_demo(None, self.field(data, "name", str, "demo")))
