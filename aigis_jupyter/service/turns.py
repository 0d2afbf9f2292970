"""Running turns across processes: leases in the store, cancel from anywhere, last results.

The kernel, the Jupyter server and hub service replicas are separate processes on one
store. A turn holds a lease row (one per thread); its process renews it while the turn
runs and polls the row's cancel flag, so `cancel` from any process stops the turn and its
SQL within about a second. A process that dies stops renewing: its lease expires after
`Settings.turn_lease_s` and the thread is usable again. The full DataFrame of a result
stays in the process that ran the query (bounded, newest kept).

One watcher thread per process looks at all of its running turns' leases in one store
round trip per poll: a server with fifty turns running costs the store one short
transaction every `POLL_S`, not fifty, and takes no slot of the event loop's workers.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import Conflict, ServiceUnavailable

if TYPE_CHECKING:
    import pandas as pd

    from ..databases.runs import CancelToken, QueryResult
    from .core import AigisService

log = logging.getLogger(__name__)

#: Where this process's turns and DataFrames live, as other processes see it.
PROCESS = f"{socket.gethostname()}:{os.getpid()}"
#: Seconds between two looks at a running turn's lease (its cancel flag).
POLL_S = 0.25
#: Full DataFrames kept per process (each may be large): the newest ones.
LAST_RESULTS_KEPT = 32


@dataclass
class RunningTurn:
    """This process's handle on one running turn."""

    thread_id: str
    owner_id: str
    holder: str
    token: CancelToken
    lost: bool = False
    started: float = field(default_factory=time.time)


class Turns:
    """Leases, cancels and the last results of one process."""

    def __init__(self, service: AigisService) -> None:
        self.service = service
        self._lock = threading.Lock()
        self._running: dict[str, RunningTurn] = {}
        self._watcher: threading.Thread | None = None
        self._last: OrderedDict[tuple[str, str], QueryResult] = OrderedDict()

    @property
    def lease_s(self) -> float:
        return float(self.service.settings.turn_lease_s)

    # -- leases (blocking: call from a worker thread) ------------------------------------
    def acquire(self, owner_id: str, thread_id: str) -> RunningTurn:
        """Take the thread's lease, or Conflict when a live turn holds it (any process)."""
        import sqlalchemy as sa

        from ..databases import CancelToken
        from ..store.models import TurnLease
        from ..store.repo import LeaseRepo

        now = time.time()
        running = RunningTurn(thread_id, owner_id, uuid.uuid4().hex, CancelToken())
        lease = TurnLease(thread_id=thread_id, owner_id=owner_id, holder=running.holder,
                          process=PROCESS, started_at=now, expires_at=now + self.lease_s,
                          cancel_requested=False)
        try:
            with self.service.store.session() as s:
                holder = LeaseRepo(s).acquire(lease, now)
        except sa.exc.IntegrityError:  # another process inserted it first
            holder = lease
        if holder is not None:
            raise Conflict("A question is already running in this thread; wait for it, "
                           "cancel it, or ask in another thread.")
        with self._lock:
            self._running[thread_id] = running
            if self._watcher is None:  # it ends itself once no turn runs here
                self._watcher = threading.Thread(target=self._watch, daemon=True,
                                                 name="aigis-turn-leases")
                self._watcher.start()
        return running

    def release(self, running: RunningTurn) -> None:
        from ..store.repo import LeaseRepo

        with self._lock:
            if self._running.get(running.thread_id) is running:
                del self._running[running.thread_id]
        try:
            with self.service.store.session() as s:
                LeaseRepo(s).release(running.thread_id, running.holder)
        except Exception as exc:  # the lease then expires on its own
            log.warning("could not release the lease of thread %s: %s", running.thread_id, exc,
                        exc_info=not isinstance(exc, ServiceUnavailable))

    def _watch(self) -> None:
        """The watcher thread: while turns run here, renew their leases and stop those
        cancelled from anywhere or taken over after expiring, all in one query a poll."""
        from ..store.repo import LeaseRepo

        next_renew = time.monotonic() + self.lease_s / 3
        while True:
            time.sleep(POLL_S)
            with self._lock:
                if not self._running:
                    self._watcher = None
                    return
                turns = dict(self._running)
            renew = time.monotonic() >= next_renew
            try:
                with self.service.store.session() as s:
                    flags = LeaseRepo(s).look({t: r.holder for t, r in turns.items()},
                                              time.time() + self.lease_s if renew else None)
            except Exception as exc:  # the store is down for a moment: keep the turns, retry
                log.warning("could not check the leases of %d running turn(s): %s", len(turns),
                            exc, exc_info=not isinstance(exc, ServiceUnavailable))
                continue
            if renew:
                next_renew = time.monotonic() + self.lease_s / 3
            for thread_id, running in turns.items():
                with self._lock:  # released meanwhile: its row is gone, and that is no loss
                    current = self._running.get(thread_id) is running
                flag = flags.get(thread_id)
                if current and flag is None:  # expired and taken over: no longer its thread
                    running.lost = True
                    running.token.cancel()
                elif current and flag:
                    running.token.cancel()

    def cancel(self, owner_id: str, thread_id: str) -> bool:
        """Stop the thread's running turn wherever it runs; False if none runs."""
        from ..store.repo import OwnerRepo

        with self._lock:
            here = self._running.get(thread_id)
        if here is not None and here.owner_id == owner_id:
            here.token.cancel()  # this process: at once, no need to wait for a poll
        with self.service.store.session() as s:
            flagged = OwnerRepo(s, owner_id).request_cancel(thread_id, time.time())
        return flagged or here is not None

    def running_threads(self, owner_id: str) -> set[str]:
        from ..store.repo import OwnerRepo

        with self.service.store.session() as s:
            return OwnerRepo(s, owner_id).running_threads(time.time())

    # -- results ---------------------------------------------------------------------------
    def remember(self, owner_id: str, thread_id: str, result: QueryResult) -> None:
        with self._lock:
            self._last[(owner_id, thread_id)] = result
            self._last.move_to_end((owner_id, thread_id))
            while len(self._last) > LAST_RESULTS_KEPT:
                self._last.popitem(last=False)

    def last_frame(self, owner_id: str, thread_id: str) -> pd.DataFrame | None:
        with self._lock:
            res = self._last.get((owner_id, thread_id))
        return None if res is None else res.df

    def forget(self, owner_id: str, thread_id: str) -> None:
        with self._lock:
            self._last.pop((owner_id, thread_id), None)


