"""Optional tracing: Opik or LangSmith when the environment asks for them.

Neither is a dependency. Opik is used when `ENABLE_OPIK_TRACER=1` and `opik` imports;
LangSmith when `LANGSMITH_TRACING` / `LANGCHAIN_TRACING_V2` is set (LangChain then traces
every run by itself, so no handler is added here, to avoid duplicate traces).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

log = logging.getLogger(__name__)

_TRUE = {"1", "true", "yes", "on"}
_lock = threading.Lock()
_opik: Any = None
_opik_failed = False


def _flag(*names: str) -> bool:
    return any(os.environ.get(n, "").strip().lower() in _TRUE for n in names)


def opik_enabled() -> bool:
    return _flag("ENABLE_OPIK_TRACER")


def langsmith_enabled() -> bool:
    return _flag("LANGSMITH_TRACING", "LANGSMITH_TRACING_V2", "LANGCHAIN_TRACING_V2",
                 "LANGCHAIN_TRACING")


def tracing_callbacks(graph: Any = None) -> list[Any]:
    """Callback handlers to attach to a run (empty when tracing is off)."""
    global _opik, _opik_failed
    handlers: list[Any] = []
    if opik_enabled() and not _opik_failed:
        with _lock:
            if _opik is None:
                try:
                    from opik.integrations.langchain import OpikTracer

                    kwargs: dict[str, Any] = {"tags": ["aigis-jupyter"]}
                    if graph is not None:
                        kwargs["graph"] = graph.get_graph(xray=True)
                    _opik = OpikTracer(**kwargs)
                except Exception as exc:  # not installed, or misconfigured
                    _opik_failed = True
                    log.warning("ENABLE_OPIK_TRACER is set but Opik is unusable: %s", exc)
        if _opik is not None:
            handlers.append(_opik)
    return handlers


def tracing_status() -> dict[str, bool]:
    """What is traced in this process (for the health report and the doors' help)."""
    return {
        "opik": opik_enabled() and not _opik_failed,
        "langsmith": langsmith_enabled(),
    }
