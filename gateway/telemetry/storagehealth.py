"""Whether this worker reaches the shared store, since when, for people and probes.

Failing open is the right default when Redis is down; failing open unseen is
not. :class:`StorageHealth` is marked down by every storage error (quotas,
cache, breakers: each also counted in ``gateway_storage_errors_total``) and
checked again (a ``PING``, at most once a second) by ``/readyz`` and the status
page, so a recovery shows within one probe. ``gateway_storage_up`` is 1 or 0
per worker.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from limits.storage import Storage
from prometheus_client import Gauge

from .metrics import STORAGE_ERRORS

STORAGE_UP = Gauge("gateway_storage_up", "1 while this worker reaches the shared store, else 0",
                   multiprocess_mode="liveall")
#: A store checked this recently is not asked again.
CHECK_EVERY = 1.0


class StorageHealth:
    """The shared store as this worker sees it (``None`` storage: nothing to reach)."""

    def __init__(self, storage: Storage | None, clock: Callable[[], float] = time.time):
        self.storage = storage
        self.clock = clock
        #: when the store was first seen unreachable (``time.time()``), None while it answers
        self.down_since: float | None = None
        self._checked_at = float("-inf")
        STORAGE_UP.set(1)

    @property
    def up(self) -> bool:
        return self.down_since is None

    def failed(self) -> None:
        if self.down_since is None:
            self.down_since = self.clock()
            STORAGE_UP.set(0)

    def on_error(self, component: str) -> Callable[[Exception], None]:
        """The ``on_storage_error`` callback for one component: counted, and marked down."""
        counter = STORAGE_ERRORS.labels(component)

        def storage_error(exc: Exception) -> None:
            counter.inc()
            self.failed()
        return storage_error

    def check(self) -> bool:
        """Ask the store (at most once a second); whether it answers."""
        if self.storage is None:
            return True
        now = self.clock()
        if now - self._checked_at >= CHECK_EVERY:
            self._checked_at = now
            if self.storage.check():
                self.down_since = None
                STORAGE_UP.set(1)
            else:
                self.failed()
        return self.up

    def describe(self) -> dict:
        """``{"state": "ok" | "unreachable", "since": ISO time or None}``."""
        since = None
        if self.down_since is not None:
            since = datetime.fromtimestamp(self.down_since, UTC).isoformat(timespec="seconds")
        return {"state": "ok" if self.up else "unreachable", "since": since}
