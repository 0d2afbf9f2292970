"""The service layer: the contract every door uses, and its in-process implementation.

`contract` holds the typed shapes and the `ServiceAPI` protocol; `core.AigisService` owns
the process's shared pieces; `scope.UserScope` (connections, threads, chat) acts for one
user; `turns` coordinates running turns across processes; `aio.AsyncScope` is the
surface an async server calls. Names resolve lazily so that importing the contract
costs nothing.
"""

from __future__ import annotations

from .._lazy import lazy_getattr

_EXPORTS = {
    "AigisService": "core",
    "AsyncScope": "aio",
    "ServiceAPI": "contract",
    "TurnRecord": "contract",
    "TurnDeps": "deps",
    "UserScope": "scope",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, _EXPORTS)
