"""The user's databases: connections (engines, dialects), the SQL guard, runs and schema.

Names are resolved lazily so that `import aigis_jupyter.databases.guard` does not pull in
pandas or SQLAlchemy.
"""

from __future__ import annotations

from .._lazy import lazy_getattr

_EXPORTS = {
    "ConnectionSpec": "engines",
    "Dialect": "engines",
    "DIALECTS": "engines",
    "EngineCache": "engines",
    "get_dialect": "engines",
    "register_dialect": "engines",
    "test_connection": "engines",
    "check_sql": "guard",
    "CancelToken": "runs",
    "QueryResult": "runs",
    "run_query": "execute",
    "Column": "catalog",
    "ForeignKey": "catalog",
    "SchemaSnapshot": "catalog",
    "Table": "catalog",
    "clear_cache": "schema",
    "render": "schema",
    "snapshot": "schema",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, _EXPORTS)
