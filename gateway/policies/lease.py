"""``quota: {mode: lease}``: each worker takes hits from the shared window in batches.

The exact fixed window (:mod:`.onetrip`) pays one Redis round trip per
request. Here a worker asks Redis for a *lease*: a batch of hits, counted in
the shared window (``INCRBY``) in the same atomic call that grants it, then
spends it locally, request by request, and asks again when it runs out.

- Never over-admits: every hit admitted anywhere was counted in Redis when it
  was granted, and Redis grants no more than the limit.
- The batch adapts to the worker's demand and to what is left: it starts at
  one hit and doubles with each lease the worker spends (so a worker never
  holds much more than it has already used in the window), and it is never
  more than a 32nd of the window's remaining hits, so it shrinks to one
  hit near the limit. Hits a worker holds unused when its requests stop are
  the only loss; both bounds keep them few.
- A window Redis says is spent is answered 429 locally, without asking Redis
  again, until it resets (a fixed window never reopens early).
- Under steady load below a tenth of the limit a batch covers more than ten
  requests of a worker (for limits of 320 and more: a 32nd of them is 10).

The keys are limits' own fixed-window keys: an exact gateway and a leasing one
count the same windows. ``RateLimit-Remaining`` is the window's count at the
last grant less what this worker still holds: it may be off by the hits
other workers hold, and is 0 on a 429.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from limits import RateLimitItem
from limits.storage import RedisStorage
from limits.util import WindowStats

from .. import state as request_state
from ..storage import Script
from .onetrip import OneTripFixedWindow

#: A lease is at most what is left divided by this.
LEASE_FRACTION = 32
#: The largest lease, whatever the demand.
MAX_LEASE = 4096
#: Every this many new windows, the ones that have reset are forgotten.
PRUNE_EVERY = 1024

#: Grant ``max(cost, min(want, floor(left / fraction)))`` hits of the window, or
#: none when fewer than ``cost`` are left; count them (expiring the key with the
#: window, as limits does). Returns {granted, the window's count after, its time
#: to live in ms}.
GRANT = """
local limit = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local want = tonumber(ARGV[4])
local fraction = tonumber(ARGV[5])
local used = tonumber(redis.call("get", KEYS[1]) or "0")
local left = limit - used
if left < cost then
    return {0, used, redis.call("pttl", KEYS[1])}
end
local grant = math.max(cost, math.min(want, math.floor(left / fraction)))
local count = redis.call("incrby", KEYS[1], grant)
if count == grant then
    redis.call("expire", KEYS[1], ARGV[1])
end
return {grant, count, redis.call("pttl", KEYS[1])}
"""


@dataclass
class Lease:
    """One worker's share of one window."""

    #: hits granted and not yet spent
    held: int
    #: the window's count in Redis at the last grant (every worker's hits)
    counted: int
    #: when the window resets (``time.time()``)
    resets: float
    #: Redis said the window is spent: 429 until it resets
    spent: bool = False
    #: the next lease to ask for: doubles with each one, halves when a window resets
    size: int = 1


class Leases:
    """One worker's leases of shared counters: take hits from a counter of ``amount``
    that expires after ``expiry`` seconds, a batch at a time (see the module docstring).
    The fixed windows of rate limits and the calendar periods of allowances
    (:mod:`.allowance`) both count through it."""

    def __init__(self, storage: RedisStorage, clock: Callable[[], float] = time.time):
        self.storage = storage
        self.clock = clock
        self._grant = Script(storage, GRANT)
        self._leases: dict[str, Lease] = {}
        self._lock = threading.Lock()
        self._made = 0

    def take(self, key: str, amount: int, expiry: int, cost: int = 1) -> tuple[bool, int, float]:
        """Spend ``cost`` hits of the counter ``key``.

        :returns: (admitted, the counter as this worker sees it: every worker's hits less
            what this one holds unspent, or ``amount`` once spent; when it resets)."""
        now = self.clock()
        with self._lock:
            lease = self._leases.get(key)
            if lease is not None and lease.resets <= now:
                # the window reset: what the worker held is gone, its demand is not
                lease.held, lease.counted, lease.spent = 0, 0, False
                lease.size = max(1, lease.size // 2)
            if lease is not None and (lease.spent or lease.held >= cost):
                admitted = not lease.spent
                if admitted:
                    lease.held -= cost
                return admitted, self._count(amount, lease), lease.resets
            want = lease.size if lease is not None else 1
        granted, count, pttl = self._grant([self.storage.prefixed_key(key)],
                                           [expiry, amount, cost, want, LEASE_FRACTION])
        resets = now + (pttl / 1000.0 if pttl >= 0 else float(expiry))
        with self._lock:
            lease = self._leases.get(key)
            if lease is None:
                lease = self._leases[key] = Lease(0, 0, resets)
                self._made += 1
                if self._made % PRUNE_EVERY == 0:
                    self._prune(now)
            lease.counted = max(lease.counted, int(count))
            lease.resets = resets
            if granted:
                lease.held += int(granted) - cost
                lease.spent = False
                lease.size = min(MAX_LEASE, max(lease.size, int(granted)) * 2)
            else:
                lease.spent = lease.held < cost
                if not lease.spent:  # another request of ours brought a lease meanwhile
                    lease.held -= cost
            return not lease.spent, self._count(amount, lease), lease.resets

    def seen(self, key: str, amount: int) -> tuple[int, float] | None:
        """The counter as :meth:`take` last saw it, None when unknown or reset."""
        with self._lock:
            lease = self._leases.get(key)
            if lease is None or lease.resets <= self.clock():
                return None
            return self._count(amount, lease), lease.resets

    @staticmethod
    def _count(amount: int, lease: Lease) -> int:
        return amount if lease.spent else lease.counted - lease.held

    def _prune(self, now: float) -> None:
        """Forget windows that have reset (per-client keys come and go)."""
        for key in [k for k, lease in self._leases.items() if lease.resets <= now]:
            del self._leases[key]


class LeasedFixedWindow(OneTripFixedWindow):
    """limits' fixed window, counted in leases of hits (see the module docstring)."""

    def __init__(self, storage: RedisStorage, clock: Callable[[], float] = time.time):
        super().__init__(storage, clock)
        self.leases = Leases(storage, clock)

    def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        key = item.key_for(*identifiers)
        admitted, count, resets = self.leases.take(key, item.amount, item.get_expiry(), cost)
        # the window as the RateLimit-* headers will tell it
        request_state.current().quota_windows[key] = (count, resets)
        return admitted

    def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats:
        key = item.key_for(*identifiers)
        seen = request_state.current().quota_windows.get(key)
        if seen is None:
            seen = self.leases.seen(key, item.amount)
            if seen is None:
                return super().get_window_stats(item, *identifiers)
            request_state.current().quota_windows[key] = seen
        count, reset = seen
        return WindowStats(reset, max(0, item.amount - count))
