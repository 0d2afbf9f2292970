"""The embedded model for real: llama.cpp in-process, and the same GGUF behind an
OpenAI-compatible HTTP server (`llama_cpp.server`), on the demo database.

Needs the `local` extra. Without llama-cpp-python these tests skip on a developer's machine
and fail in CI (CI=true), where the extra is always installed.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import missing
from live_server import free_port
from test_agent_support import SqliteDeps, collect, kinds

pytestmark = [pytest.mark.local_model, pytest.mark.slow]

QUESTION = "How many customers are there?"


@pytest.fixture(scope="module")
def llama() -> Any:
    try:
        import llama_cpp
    except ImportError:
        missing("llama-cpp-python (pip install 'aigis-jupyter[local]')")
    return llama_cpp


@pytest.fixture(scope="module")
def gguf(llama: Any) -> Path:
    from aigis_jupyter.models import default_gguf_path

    try:
        return default_gguf_path()
    except Exception as exc:  # the weights package is part of the same extra
        missing(f"the embedded model's weights ({exc})")
        raise


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from aigis_jupyter.demo import build_demo_sqlite

    return build_demo_sqlite(tmp_path_factory.mktemp("demo") / "demo.sqlite")


@pytest.fixture
def customers(demo_db: Path) -> int:
    with sqlite3.connect(demo_db) as con:
        return int(con.execute("SELECT COUNT(*) FROM customers").fetchone()[0])


def _runner(settings: Any, deps: SqliteDeps) -> Any:
    from aigis_jupyter.agent.runner import AgentRunner
    from aigis_jupyter.models import ModelRegistry

    return AgentRunner(registry=ModelRegistry(settings),
                       checkpointer_url_or_saver=settings.store_url, deps=deps, settings=settings)


def _model_words(events: list[dict[str, Any]]) -> str:
    """The answer as the model wrote it: the turn's answer, which must not have needed the
    fallback sentence built from the result (that one always has the right number)."""
    from aigis_jupyter.agent import prompts

    answer = events[-1]["full_response"]
    assert answer == "".join(e["content"] for e in events if e["type"] == "chunk")
    table = next(e for e in events if e["type"] == "table")
    fallback = prompts.fallback_answer(table)
    assert fallback not in answer, f"the model's answer was unusable: {answer!r}"
    return answer


def _check_count_turn(events: list[dict[str, Any]], deps: SqliteDeps, expected: int) -> None:
    ks = kinds(events)
    assert "error" not in ks, events
    assert ks[:2] == ["status:schema", "status:sql"] and ks[-1] == "end"
    sql = next(e["sql"] for e in events if e["type"] == "sql")
    assert "count" in sql.lower() and "customers" in sql.lower()
    assert deps.last is not None and int(deps.last.df.iloc[0, 0]) == expected  # the DataFrame
    table = next(e for e in events if e["type"] == "table")
    assert table["rows"] == [[expected]]
    words = _model_words(events)
    assert str(expected) in words, f"the model said {words!r}, the answer is {expected}"


async def test_embedded_model_answers_a_count(settings, gguf: Path, demo_db: Path,
                                              customers: int) -> None:
    from aigis_jupyter.models import ModelRegistry

    info = ModelRegistry(settings).resolve("local")
    assert info.available and info.supports_tools is False
    deps = SqliteDeps(demo_db)
    runner = _runner(settings, deps)
    # how fast is benchmark B8's business (latency); here: what the model itself says
    events = await collect(runner.run_turn("local-1", QUESTION, connection_id="shop",
                                           model_name="local"))
    _check_count_turn(events, deps, customers)
    # a second question in the same thread reuses the loaded model
    events = await collect(runner.run_turn("local-1", "How many products are there?"))
    assert "error" not in kinds(events) and events[-1]["full_response"].strip()
    deps.close()


@pytest.fixture(scope="module")
def llama_server(gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m llama_cpp.server` serving the embedded GGUF on a free local port."""
    try:
        import llama_cpp.server  # noqa: F401  (the `server` extra)
    except ImportError:
        missing("llama-cpp-python[server]")
    port = free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1",
             "--port", str(port), "--n_threads", "2", "--n_ctx", "4096"],
            stdout=out, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/v1/models", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def test_lm_studio_endpoint_streams_over_http(settings, llama_server: str, demo_db: Path,
                                              monkeypatch) -> None:
    from aigis_jupyter.agent import context, prompts
    from aigis_jupyter.agent.sqltext import extract_sql
    from aigis_jupyter.models import ModelRegistry

    monkeypatch.setenv("LM_STUDIO_ENDPOINT", llama_server)  # no /v1: normalised
    reg = ModelRegistry(settings)
    assert reg.resolve("qwen").available and reg.resolve("gpt-oss").available
    model = reg.chat_model("qwen")
    deps = SqliteDeps(demo_db)
    sc = context.schema_context(deps.snapshot("shop"), QUESTION,
                                token_budget=settings.schema_token_budget,
                                synonyms=settings.schema_synonyms)
    prompt = prompts.sql_completion(QUESTION, sc, "sqlite", [])
    pieces = [str(c.content) for c in model.stream(prompt, stop=prompts.SQL_STOP, max_tokens=60)]
    text = "".join(pieces)
    assert len([p for p in pieces if p]) >= 3  # streamed token by token over HTTP
    assert "customers" in extract_sql(text, prefix="SELECT").lower()
    deps.close()


async def test_openai_compatible_model_answers_over_http(settings, llama_server: str,
                                                         demo_db: Path, customers: int) -> None:
    settings.extra_models = {
        "gemma-http": {"base_url": llama_server, "model": "gemma-3-270m",
                       "prompt_style": "completion", "max_tokens": "160"},
    }
    deps = SqliteDeps(demo_db)
    runner = _runner(settings, deps)
    events = await collect(runner.run_turn("http-1", QUESTION, connection_id="shop",
                                           model_name="gemma-http"))
    _check_count_turn(events, deps, customers)
    deps.close()


def test_not_skipped_in_ci() -> None:
    """In CI the `local` extra is installed: these tests must run there, never skip."""
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        import llama_cpp  # noqa: F401


async def test_a_wrong_number_gets_the_fallback_sentence(settings, deps) -> None:
    """The fallback on its own, with a scripted completion model (as the embedded one is)
    that counts wrong: the result's own sentence replaces the model's (never shown)."""
    from test_agent_support import scripted_registry

    from aigis_jupyter.agent.runner import AgentRunner

    with sqlite3.connect(deps.spec.host) as con:
        n = int(con.execute("SELECT COUNT(*) FROM customers").fetchone()[0])
    reg, _ = scripted_registry(settings, [" COUNT(*) AS n FROM customers",
                                          f" There are {n + 7} customers."],
                               style="completion")
    runner = AgentRunner(registry=reg, checkpointer_url_or_saver=settings.store_url,
                         deps=deps, settings=settings.replace(query_candidates=False))
    events = await collect(runner.run_turn("fallback-1", QUESTION, connection_id="shop",
                                           model_name="scripted"))
    assert "error" not in kinds(events), events
    assert events[-1]["full_response"] == f"The answer is {n} (n)."
    with pytest.raises(AssertionError, match="unusable"):
        _model_words(events)


def test_the_evaluated_prefix_is_reused_across_calls(gguf: Path) -> None:
    """SQL prompt, answer prompt, next question's SQL prompt: the third evaluates only what
    differs from the first (llama.cpp counts the prompt tokens it evaluates)."""
    from langchain_core.messages import HumanMessage

    from aigis_jupyter.agent.local_llm import LocalLlamaChatModel, last_prompt_eval

    model = LocalLlamaChatModel(model_path=str(gguf), max_tokens=4)
    schema = "\n".join(f"-- Table t{i}(id, name_{i}, value_{i}, created_{i})"
                       for i in range(60))
    prompts = [f"{schema}\n-- Question: How many rows does t1 have?\nSELECT",
               "Question: How many rows?\nSQL: SELECT COUNT(*) FROM t1\nResult: 3\nAnswer:",
               f"{schema}\n-- Question: What is the largest value in t2?\nSELECT"]
    evaluated = []
    for p in prompts:
        model.invoke([HumanMessage(p)])
        evaluated.append(last_prompt_eval[str(gguf)])
    (first, n_first), (second, _), (third, n_third) = evaluated
    assert first > n_first / 2  # the first one is evaluated (nothing to reuse yet)
    assert second > 0
    assert 0 <= third < n_third / 5, evaluated  # the schema came from the cache


def test_the_model_scores_which_query_explains_a_question(gguf: Path) -> None:
    """log P(question | query): a count of customers explains "how many customers" better
    than a product list; scoring again over the kept prefix gives the same figures, and the
    contexts still generate afterwards."""
    from langchain_core.messages import HumanMessage

    from aigis_jupyter.agent.local_llm import LocalLlamaChatModel
    from aigis_jupyter.agent.prompts import LIKELIHOOD_HEADER

    model = LocalLlamaChatModel(model_path=str(gguf), max_tokens=4)
    question = "Question: How many customers are there?"
    pairs = [("SQL: SELECT COUNT(*) FROM customers\n", question),
             ("SQL: SELECT name FROM products ORDER BY price DESC LIMIT 1\n", question)]
    first = model.likelihoods(LIKELIHOOD_HEADER, pairs)
    assert first is not None and first[0] > first[1], first
    # (float sums over another split of the batch differ in the last digits)
    assert model.likelihoods(LIKELIHOOD_HEADER, pairs) == pytest.approx(first, abs=0.1)
    assert isinstance(model.invoke([HumanMessage("SQL: SELECT 1\nQuestion:")]).content, str)
