"""``websocket.max_per_consumer``: how many WebSockets one consumer holds open at once.

Counted in the worker with ``memory://`` (one process), and across workers
and hosts in Redis: one sorted set per service and consumer, a member per
open connection scored with when it expires. A connection renews its member
while it is open (every :data:`RENEW_EVERY` seconds, from the tunnel) and
removes it when it ends; a worker that dies without removing its members
loses them within :data:`EXPIRES_AFTER` seconds, so a crash never locks a
consumer out for longer than that. Past the limit the handshake gets 429
``too_many_connections``. The store unreachable: the handshake is let through
(logged and counted), as quotas do by default.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import Counter
from collections.abc import Callable

from limits.storage import RedisStorage
from limits.storage import Storage as LimitsStorage

from ..errors import GatewayError
from ..storage import BACKEND_ERRORS, Script

log = logging.getLogger("gateway.websocket")

#: How long a member lives without being renewed.
EXPIRES_AFTER = 60.0
#: How often an open connection renews its member.
RENEW_EVERY = 20.0

#: Drop expired members; add ours if fewer than the limit are left. Redis's
#: own clock, so hosts whose clocks differ count the same members.
TAKE = """
local now = redis.call("time")
now = tonumber(now[1]) + tonumber(now[2]) / 1000000
redis.call("zremrangebyscore", KEYS[1], "-inf", now)
if redis.call("zcard", KEYS[1]) >= tonumber(ARGV[3]) then
    return 0
end
redis.call("zadd", KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call("expire", KEYS[1], math.ceil(tonumber(ARGV[2])))
return 1
"""
RENEW = """
local now = redis.call("time")
now = tonumber(now[1]) + tonumber(now[2]) / 1000000
redis.call("zadd", KEYS[1], "XX", now + tonumber(ARGV[2]), ARGV[1])
redis.call("expire", KEYS[1], math.ceil(tonumber(ARGV[2])))
return 1
"""


class Slot:
    """One open connection's place; ``release`` when it ends (more than once is fine)."""

    #: seconds between renewals while the connection is open; 0: none needed
    refresh_every = 0.0

    def refresh(self) -> None:
        pass

    def release(self) -> None:
        pass


class _CountedSlot(Slot):
    def __init__(self, release: Callable[[], None]):
        self._release, self._released = release, False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._release()


class _RedisSlot(_CountedSlot):
    refresh_every = RENEW_EVERY

    def __init__(self, slots: ConnectionSlots, key: str, member: str):
        super().__init__(lambda: slots.forget(key, member))
        self._renew = lambda: slots.renew(key, member)

    def refresh(self) -> None:
        self._renew()


def too_many(service: str, limit: int) -> GatewayError:
    return GatewayError(429, "too_many_connections",
                        f"this consumer already holds {limit} open WebSocket connections to "
                        f"{service}; close one first", {"Retry-After": "1"})


class ConnectionSlots:
    """Open WebSockets per service and consumer, for every service of a worker."""

    def __init__(self, storage: LimitsStorage | None,
                 on_storage_error: Callable[[Exception], None] | None = None):
        self.storage = storage if isinstance(storage, RedisStorage) else None
        self.on_storage_error = on_storage_error or (lambda exc: None)
        self._open: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        if self.storage is not None:
            self._take, self._renew = Script(self.storage, TAKE), Script(self.storage, RENEW)

    def take(self, service: str, who: str, limit: int) -> Slot:
        """A slot for one more connection of ``who`` to ``service``.

        :raises GatewayError: 429 ``too_many_connections`` when ``who`` holds ``limit``.
        """
        if limit <= 0:
            return Slot()
        if self.storage is None:
            return self._take_here(service, who, limit)
        key = self.storage.prefixed_key(f"{{gateway-ws:{service}:{who}}}")
        member = uuid.uuid4().hex
        try:
            taken = self._take([key], [member, EXPIRES_AFTER, limit])
        except BACKEND_ERRORS as exc:
            self.on_storage_error(exc)
            log.warning("WebSocket connection counts unreachable (%s): handshake let through", exc)
            return Slot()
        if not taken:
            raise too_many(service, limit)
        return _RedisSlot(self, key, member)

    def _take_here(self, service: str, who: str, limit: int) -> Slot:
        key = (service, who)
        with self._lock:
            if self._open[key] >= limit:
                raise too_many(service, limit)
            self._open[key] += 1

        def release() -> None:
            with self._lock:
                self._open[key] -= 1
                if not self._open[key]:
                    del self._open[key]
        return _CountedSlot(release)

    def renew(self, key: str, member: str) -> None:
        try:
            self._renew([key], [member, EXPIRES_AFTER])
        except BACKEND_ERRORS as exc:
            self.on_storage_error(exc)

    def forget(self, key: str, member: str) -> None:
        assert self.storage is not None
        try:
            self.storage.get_connection().zrem(key, member)  # type: ignore[attr-defined]
        except BACKEND_ERRORS as exc:
            self.on_storage_error(exc)
