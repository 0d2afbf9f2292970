"""aigis-jupyter: chat with your own databases from Jupyter.

Importing the package is cheap on purpose: `%load_ext aigis_jupyter` must stay fast,
so every heavy module (pandas, SQLAlchemy, LangGraph) is imported only when used.
"""

from __future__ import annotations

from typing import Any

from ._version import __version__

__all__ = ["__version__", "_jupyter_server_extension_points", "load_ipython_extension",
           "unload_ipython_extension"]


def load_ipython_extension(ipython: Any) -> None:
    """Register the `%%aigis` / `%aigis` magics (`%load_ext aigis_jupyter`)."""
    from .magics import load_ipython_extension as _load

    _load(ipython)


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    """The server extension (`aigis/` REST + SSE routes), found by jupyter-server."""
    from .server.app import AigisExtension

    return [{"module": "aigis_jupyter", "app": AigisExtension}]


def unload_ipython_extension(ipython: Any) -> None:
    from .magics import unload_ipython_extension as _unload

    _unload(ipython)
