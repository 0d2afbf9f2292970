"""The user's databases: connections (engines), the SQL guard, execution and schema.

Names are resolved lazily so that `import aigis_jupyter.databases.guard` does not pull in
pandas or SQLAlchemy.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ConnectionSpec": "engines",
    "Dialect": "engines",
    "DIALECTS": "engines",
    "EngineCache": "engines",
    "get_dialect": "engines",
    "register_dialect": "engines",
    "test_connection": "engines",
    "check_sql": "guard",
    "CancelToken": "execute",
    "QueryResult": "execute",
    "run_query": "execute",
    "Column": "schema",
    "ForeignKey": "schema",
    "SchemaSnapshot": "schema",
    "Table": "schema",
    "render": "schema",
    "snapshot": "schema",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
