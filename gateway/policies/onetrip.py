"""A fixed-window quota in one Redis round trip per limit.

limits' fixed window takes three: ``EVALSHA`` to increment, then ``GET`` and
``TTL`` when the ``RateLimit-*`` headers ask for the window's remaining count
and reset time. :class:`OneTripFixedWindow` increments and reads the window's
time to live in one Lua call, keeps both on the request's state, and answers
the headers (and the 429's ``Retry-After``) from them. The count is the same
atomic ``INCRBY`` limits uses, on the same keys, so limits stay exact across
workers and hosts, and a gateway mixing versions counts the same windows.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from limits import RateLimitItem
from limits.storage import RedisStorage
from limits.strategies import FixedWindowRateLimiter
from limits.util import WindowStats

from .. import state as request_state
from ..storage import Script

#: INCRBY, set the window's expiry on its first hit (as limits' incr_expire.lua
#: does), and return the count with the window's time to live in milliseconds.
INCR_AND_PTTL = """
local amount = tonumber(ARGV[2])
local count = redis.call("incrby", KEYS[1], amount)
if count == amount then
    redis.call("expire", KEYS[1], ARGV[1])
end
return {count, redis.call("pttl", KEYS[1])}
"""


class OneTripFixedWindow(FixedWindowRateLimiter):
    """limits' fixed window, with ``hit`` and ``get_window_stats`` sharing one round trip."""

    storage: RedisStorage

    def __init__(self, storage: RedisStorage, clock: Callable[[], float] = time.time):
        """:param clock: seconds now, when a window resets (tests move it by hand)."""
        super().__init__(storage)
        self.clock = clock
        self._incr_and_pttl = Script(storage, INCR_AND_PTTL)

    def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        key = item.key_for(*identifiers)
        count, pttl = self._incr_and_pttl([self.storage.prefixed_key(key)],
                                          [item.get_expiry(), cost])
        ttl = pttl / 1000.0 if pttl >= 0 else float(item.get_expiry())
        request_state.current().quota_windows[key] = (int(count), self.clock() + ttl)
        return int(count) <= item.amount

    def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats:
        key = item.key_for(*identifiers)
        seen = request_state.current().quota_windows.get(key)
        if seen is None:  # not hit in this request: ask the store
            return super().get_window_stats(item, *identifiers)
        count, reset = seen
        return WindowStats(reset, max(0, item.amount - count))
