"""`GET /chat/{id}/result`: the thread's last result, as JSON pages or Apache Arrow.

The full DataFrame lives in the process that ran the query (this server, for turns asked
through it); JSON pages fall back to the stored preview, marked `complete: false`, when
another process (a notebook's kernel) ran it. Arrow is always the whole frame: when another
process holds it (another replica of the hub's service, one that restarted, a kernel), the
stored SQL runs again here, through the guard, on the connection it ran on.
"""

from __future__ import annotations

import asyncio
import io
from typing import TYPE_CHECKING, Any

from ..errors import NotFound
from .base import AigisHandler, api

if TYPE_CHECKING:
    import pandas as pd

ARROW_STREAM = "application/vnd.apache.arrow.stream"
PAGE_MAX = 10_000
#: The largest `offset` a page may start at.
RESULT_OFFSET_MAX = 10**9


def arrow_bytes(df: pd.DataFrame, metadata: dict[str, str] | None = None) -> bytes:
    """A DataFrame as an Arrow IPC stream; columns Arrow cannot type go as text."""
    import pyarrow as pa

    try:
        table = pa.Table.from_pandas(df, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        table = pa.Table.from_pandas(df.astype(str), preserve_index=False)
    if metadata:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **{
            k.encode(): v.encode() for k, v in metadata.items()}})
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def json_page(df: pd.DataFrame, offset: int, limit: int) -> list[list[Any]]:
    from ..databases.runs import json_safe

    page = df.iloc[offset:offset + limit]
    return [[json_safe(v) for v in row] for row in page.itertuples(index=False, name=None)]


class ResultHandler(AigisHandler):
    @api
    async def get(self, thread_id: str) -> None:
        scope = await self.scope()
        df = await scope.last_result(thread_id)
        if ARROW_STREAM in (self.request.headers.get("Accept") or ""):
            if df is None:
                preview = await scope.result_preview(thread_id)
                if not preview or not preview.get("sql") or not preview.get("connection_id"):
                    raise NotFound("This thread has no result yet: ask a question first.")
                df = (await scope.run_sql(str(preview["connection_id"]), str(preview["sql"]),
                                          thread_id=thread_id)).df
            data = await asyncio.to_thread(arrow_bytes, df)
            self.set_header("Content-Type", ARROW_STREAM)
            self.finish(data, set_content_type=ARROW_STREAM)
            return
        offset = self.int_arg("offset", 0, 0, RESULT_OFFSET_MAX)
        limit = self.int_arg("limit", 100, 1, PAGE_MAX)
        if df is not None:
            rows = await asyncio.to_thread(json_page, df, offset, limit)
            preview = await scope.result_preview(thread_id)
            self.reply({"thread_id": thread_id, "columns": [str(c) for c in df.columns],
                        "rows": rows, "offset": offset, "limit": limit, "row_count": len(df),
                        "truncated": bool(preview and preview["truncated"]), "complete": True})
            return
        preview = await scope.result_preview(thread_id)
        if preview is None:
            raise NotFound("This thread has no result yet: ask a question first.")
        self.reply({**preview, "rows": preview["rows"][offset:offset + limit],
                    "offset": offset, "limit": limit, "complete": False})


__all__ = ["ARROW_STREAM", "ResultHandler", "arrow_bytes"]
