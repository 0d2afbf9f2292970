"""Routes that teach a connection: its verified queries (its notes are a connection field)."""

from __future__ import annotations

from ..errors import BadInput
from .base import AigisHandler, api


class ExamplesHandler(AigisHandler):
    @api
    async def get(self, ref: str) -> None:
        self.reply(await (await self.scope()).list_examples(ref))

    @api
    async def post(self, ref: str) -> None:
        """Teach one verified query; the same question again replaces its SQL (200)."""
        data = self.body(allowed=("question", "sql"), required=("question", "sql"))
        scope = await self.scope()
        before = {e["id"] for e in await scope.list_examples(ref)}
        out = (await scope.add_examples(ref, [data]))[0]
        self.reply(out, 200 if out["id"] in before else 201)


class ExamplesImportHandler(AigisHandler):
    @api
    async def post(self, ref: str) -> None:
        """Teach many at once (a JSONL or YAML file, read by the client): all or none."""
        data = self.body(allowed=("examples",), required=("examples",))
        items = data["examples"]
        if not isinstance(items, list):
            raise BadInput("'examples' must be a list of {question, sql} objects.")
        self.reply(await (await self.scope()).add_examples(ref, items), 201)


class ExampleHandler(AigisHandler):
    @api
    async def put(self, ref: str, example_id: str) -> None:
        data = self.body(allowed=("question", "sql"))
        scope = await self.scope()
        self.reply(await scope.update_example(ref, example_id, data))

    @api
    async def delete(self, ref: str, example_id: str) -> None:
        await (await self.scope()).delete_example(ref, example_id)
        self.set_status(204)
        self.finish()


class VerifyHandler(AigisHandler):
    @api
    async def post(self, thread_id: str) -> None:
        """Teach the thread's last answered question with the SQL that answered it."""
        self.body(allowed=())
        self.reply(await (await self.scope()).verify_turn(thread_id), 201)
