"""Threads live in the store's database: they resume in a new process (SQLite) and on
PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from test_agent_support import SqliteDeps, build_shop_sqlite, collect, kinds, scripted_registry

from aigis_jupyter.agent.runner import AgentRunner

HERE = Path(__file__).resolve().parent

FIRST_PROCESS = textwrap.dedent(
    """
    import asyncio, json, sys
    sys.path.insert(0, {tests!r})
    from pathlib import Path
    from test_agent_support import SqliteDeps, collect, scripted_registry
    from aigis_jupyter.agent.runner import AgentRunner
    from aigis_jupyter.settings import Settings

    settings = Settings(data_dir=Path({data!r}))
    replies = ["SELECT COUNT(*) AS n FROM orders", "There are 120 orders."]
    reg, _ = scripted_registry(settings, replies)
    deps = SqliteDeps(Path({shop!r}))
    runner = AgentRunner(registry=reg, checkpointer_url_or_saver=settings.store_url, deps=deps,
                         settings=settings)
    events = asyncio.run(collect(runner.run_turn("th-1", "How many orders are there?",
                                                 connection_id="shop", model_name="scripted")))
    print(json.dumps(events[-1]))
    """
)


def test_thread_resumes_after_a_restart(settings, tmp_path: Path) -> None:
    shop = build_shop_sqlite(tmp_path / "shop.sqlite")
    script = FIRST_PROCESS.format(tests=str(HERE), data=str(settings.data_dir), shop=str(shop))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, cwd=HERE.parent)
    assert out.returncode == 0, out.stderr
    end = json.loads(out.stdout.strip().splitlines()[-1])
    assert end["full_response"] == "There are 120 orders."
    assert (settings.data_dir / "aigis.checkpoints.sqlite").exists()

    # a new process (this one): same store, nothing in memory
    reg, model = scripted_registry(settings, [
        "SELECT COUNT(*) AS n FROM orders WHERE status = 'shipped'", "96 of them shipped.",
    ])
    deps = SqliteDeps(shop)
    runner = AgentRunner(registry=reg, checkpointer_url_or_saver=settings.store_url, deps=deps,
                         settings=settings)
    state = runner.state("th-1")
    assert state["model_name"] == "scripted" and state["connection"] == "shop"
    assert [m["role"] for m in state["messages"]] == ["human", "ai", "tool", "ai"]
    assert state["messages"][2]["sql"] == "SELECT COUNT(*) AS n FROM orders"

    import asyncio

    # no model and no connection given: the thread's own are used
    events = asyncio.run(collect(runner.run_turn("th-1", "and how many of them shipped?")))
    assert "error" not in kinds(events)
    assert next(e for e in events if e["type"] == "table")["rows"] == [[96]]
    texts = [str(m.content) for m in model.seen[0]]
    assert "How many orders are there?" in texts and "SELECT COUNT(*) AS n FROM orders" in texts
    runner.close()
    deps.close()


@pytest.mark.postgres
async def test_postgres_checkpointer(settings, pg_db: str, tmp_path: Path) -> None:
    shop = build_shop_sqlite(tmp_path / "shop.sqlite")
    deps = SqliteDeps(shop)
    reg, _ = scripted_registry(settings, ["SELECT COUNT(*) AS n FROM customers", "25."])
    runner = AgentRunner(registry=reg, checkpointer_url_or_saver=pg_db, deps=deps,
                         settings=settings)
    events = await collect(runner.run_turn("pg-thread", "How many customers?",
                                           connection_id="shop", model_name="scripted"))
    assert "error" not in kinds(events)
    runner.close()

    again = AgentRunner(registry=reg, checkpointer_url_or_saver=pg_db, deps=deps,
                        settings=settings)
    state = await again.astate("pg-thread")
    assert state["model_name"] == "scripted" and state["connection"] == "shop"
    assert state["sql_result"]["rows"] == [[25]]
    assert again.state("pg-thread")["messages"][0]["content"] == "How many customers?"
    again.delete_thread("pg-thread")
    assert again.state("pg-thread")["messages"] == []
    again.close()
    deps.close()
