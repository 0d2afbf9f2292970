"""Shared pieces of the agent tests: a real SQLite database, real `AgentDeps`, a scripted model.

The database layer is the real one (guard, read-only execution, schema snapshot); only the
language model is scripted, with LangChain's own fake chat model.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field

from aigis_jupyter.agent.deps import SpecDeps
from aigis_jupyter.models import ModelInfo, ModelRegistry

FAIL = "<<FAIL>>"


def build_shop_sqlite(path: Path) -> Path:
    """A small shop: regions, customers, products, orders (2022-2024), order_items."""
    path = Path(path)
    if path.exists():
        path.unlink()
    con = sqlite3.connect(path)
    con.executescript(
        """
        CREATE TABLE regions (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
        CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL,
            email TEXT, region_id INTEGER REFERENCES regions(id), created_at DATE);
        CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT NOT NULL,
            category TEXT, price REAL);
        CREATE TABLE orders (id INTEGER PRIMARY KEY,
            customer_id INTEGER REFERENCES customers(id), order_date DATE, status TEXT);
        CREATE TABLE order_items (order_id INTEGER REFERENCES orders(id),
            product_id INTEGER REFERENCES products(id), quantity INTEGER, unit_price REAL);
        """
    )
    regions = ["North", "South", "East", "West"]
    con.executemany("INSERT INTO regions VALUES (?, ?)", list(enumerate(regions, 1)))
    con.executemany(
        "INSERT INTO customers VALUES (?, ?, ?, ?, ?)",
        [(i, f"Customer {i}", f"c{i}@example.com", 1 + i % 4, f"2022-{1 + i % 12:02d}-01")
         for i in range(1, 26)],
    )
    cats = ["Books", "Games", "Music"]
    con.executemany(
        "INSERT INTO products VALUES (?, ?, ?, ?)",
        [(i, f"Product {i}", cats[i % 3], 5.0 + i) for i in range(1, 10)],
    )
    orders, items = [], []
    for i in range(1, 121):
        year = 2022 + i % 3
        orders.append((i, 1 + i % 25, f"{year}-{1 + i % 12:02d}-{1 + i % 28:02d}",
                       "shipped" if i % 5 else "cancelled"))
        items.append((i, 1 + i % 9, 1 + i % 4, 5.0 + 1 + i % 9))
    con.executemany("INSERT INTO orders VALUES (?, ?, ?, ?)", orders)
    con.executemany("INSERT INTO order_items VALUES (?, ?, ?, ?)", items)
    con.commit()
    con.close()
    return path


class SqliteDeps(SpecDeps):
    """`AgentDeps` over a real SQLite file through the real database layer."""

    def __init__(self, path: Path, *, max_rows: int = 1_000, timeout_s: float = 30.0,
                 **teach: Any) -> None:
        from aigis_jupyter.databases.engines import ConnectionSpec

        super().__init__(ConnectionSpec(id="shop", db_type="sqlite", host=str(path)),
                         max_rows=max_rows, timeout_s=timeout_s, **teach)


class ScriptedChatModel(GenericFakeChatModel):
    """LangChain's fake chat model, plus: it records every prompt, and a scripted reply
    containing `<<FAIL>>` streams the words before it and then raises (a model dying
    mid-stream)."""

    seen: list[list[BaseMessage]] = Field(default_factory=list)

    def _next(self, messages: list[BaseMessage]) -> str:
        self.seen.append(list(messages))
        item = next(self.messages)
        if isinstance(item, BaseException):
            raise item
        return item.content if isinstance(item, AIMessage) else str(item)

    def _stream(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        text = self._next(messages)
        head, fail, _ = text.partition(FAIL)
        for token in re.split(r"(\s)", head):
            if token:
                yield ChatGenerationChunk(message=AIMessageChunk(content=token))
        if fail:
            raise ConnectionError("upstream connection reset by peer")

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        text = "".join(str(c.message.content) for c in self._stream(messages, stop))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])

    def prompt_text(self, i: int) -> str:
        return "\n".join(str(m.content) for m in self.seen[i])


def scripted_registry(settings: Any, replies: list[Any], name: str = "scripted",
                      style: str = "chat") -> tuple[ModelRegistry, ScriptedChatModel]:
    model = ScriptedChatModel(messages=iter(replies))
    reg = ModelRegistry(settings)
    reg.register(ModelInfo(name=name, provider="fake", supports_tools=False, prompt_style=style),
                 lambda: model)
    return reg, model


async def collect(stream: Any) -> list[dict[str, Any]]:
    return [e async for e in stream]


def kinds(events: list[dict[str, Any]]) -> list[str]:
    """Event types in order, with status phases spelled out (`status:sql`)."""
    return [f"status:{e['phase']}" if e["type"] == "status" else e["type"] for e in events]


def run(coro: Any) -> Any:
    return asyncio.run(coro)
