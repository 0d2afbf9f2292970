"""How doors reach the service: in process (local mode) or, in hub mode, over HTTP.

Both implement `service.contract.ServiceAPI`; `bridge` lets synchronous doors iterate the
asyncio event stream.
"""

from __future__ import annotations

from .bridge import background_loop, run_sync, stream_sync
from .local import current_username, local_scope, local_service

__all__ = ["background_loop", "current_username", "local_scope", "local_service", "run_sync",
           "stream_sync"]
