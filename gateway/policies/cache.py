"""``cache: {ttl: 30}``: a response cache for GET and HEAD.

The key is method + raw path + sorted query + consumer (when the route has
API keys); the upstream's ``Vary`` adds the named request headers. Entries
live in a cachetools ``TLRUCache`` per route (one process), or in Redis when
``storage`` is ``redis://`` (shared by every worker and host).

Stored: the configured statuses, unless the upstream says ``no-store``,
``private`` or ``no-cache``, sets a cookie, varies on ``*``, or the body is
over ``max_body_bytes`` (a streamed answer is recorded while it streams, and
dropped if it grows past that). ``max-age``/``s-maxage`` shorten the TTL.
A client's ``no-cache`` skips the lookup (``BYPASS``) and stores the fresh
answer; ``no-store`` skips both. ``X-Cache-Status`` (HIT, MISS, BYPASS) and
``Age`` go on every response of the route.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from cachetools import TLRUCache
from flask import Response, request

from .. import state as request_state
from ..config import CacheConfig
from ..routing.headers import header_tokens
from ..routing.paths import raw_target
from ..routing.websocket import is_handshake
from ..storage import BACKEND_ERRORS
from ..transport import BodyCopy, UpstreamBody, is_stream
from . import Policy

log = logging.getLogger("gateway.cache")

#: Bytes of bodies one route may keep in process memory.
MEMORY_BUDGET = 64 * 1024 * 1024
REDIS_PREFIX = "gateway:cache:"
_MAX_AGE = re.compile(r"(?:^|,)\s*(s-maxage|max-age)\s*=\s*\"?(\d+)")
#: Headers never replayed from the cache (they are about one exchange).
_NOT_STORED = frozenset({"age", "x-request-id", "x-cache-status", "set-cookie"})


@dataclass
class Entry:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    stored_at: float
    ttl: float
    vary: dict[str, str]

    def to_json(self) -> str:
        return json.dumps({"s": self.status, "r": self.reason, "h": self.headers,
                           "b": base64.b64encode(self.body).decode(), "t": self.stored_at,
                           "l": self.ttl, "v": self.vary})

    @classmethod
    def from_json(cls, data: bytes | str) -> Entry:
        d = json.loads(data)
        return cls(d["s"], d["r"], [tuple(h) for h in d["h"]], base64.b64decode(d["b"]),
                   d["t"], d["l"], d["v"])


class MemoryStore:
    """Entries in a TLRU cache: each expires at its own TTL, the least used go first."""

    def __init__(self, clock: Callable[[], float] = time.time):
        """:param clock: seconds now (tests move it by hand)."""
        self._cache: TLRUCache[str, Entry] = TLRUCache(
            maxsize=MEMORY_BUDGET, ttu=lambda _k, e, now: now + e.ttl, timer=clock,
            getsizeof=lambda e: len(e.body) + 512)
        self._lock = threading.Lock()

    def get(self, key: str) -> Entry | None:
        with self._lock:
            return self._cache.get(key)

    def put(self, key: str, entry: Entry) -> None:
        with self._lock:
            try:
                self._cache[key] = entry
            except ValueError:  # larger than the whole budget
                pass


class RedisStore:
    """Entries in Redis with their TTL, shared by every worker and gateway."""

    def __init__(self, connection, route: str):
        """:param connection: ``f() -> client`` (gateway/storage.py: redis_connection)."""
        self.connection = connection
        self.prefix = f"{REDIS_PREFIX}{route}:"

    def get(self, key: str) -> Entry | None:
        data = self.connection().get(self.prefix + key)
        return Entry.from_json(data) if data else None

    def put(self, key: str, entry: Entry) -> None:
        self.connection().set(self.prefix + key, entry.to_json(),
                              px=max(1, int(entry.ttl * 1000)))


class ResponseCache(Policy):
    step = "cache"

    def __init__(self, route: str, config: CacheConfig, store, by_consumer: bool,
                 on_result=None, on_storage_error=None,
                 clock: Callable[[], float] = time.time):
        """:param clock: seconds now, for ``Age`` and when an entry was stored (the
            memory store's own clock must be the same)."""
        self.clock = clock
        self.route = route
        self.config = config
        self.store = store
        self.by_consumer = by_consumer
        self.on_result = on_result or (lambda result: None)
        self.on_storage_error = on_storage_error or (lambda exc: None)

    # -- before: look up ------------------------------------------------------------

    def before(self):
        state = request_state.current()
        state.cache_status = "BYPASS"
        if request.method not in ("GET", "HEAD") or is_handshake(request.environ):
            return None  # a WebSocket handshake is never answered from the cache
        directives = request.headers.get("Cache-Control", "").lower()
        if "no-store" in directives:
            return None
        key = state.cache_key = self.key()
        if "no-cache" in directives or "no-cache" in request.headers.get("Pragma", "").lower():
            return None
        entry = self._get(key)
        if entry is not None and all(request.headers.get(h, "") == v
                                     for h, v in entry.vary.items()):
            state.cache_status = "HIT"
            age = max(0, int(self.clock() - entry.stored_at))
            response = Response(entry.body, status=f"{entry.status} {entry.reason}".strip(),
                                headers=entry.headers)
            # werkzeug sized the body; a stored HEAD answer keeps the upstream's length
            stored_length = dict((k.lower(), v) for k, v in entry.headers).get("content-length")
            if stored_length is not None:
                response.headers["Content-Length"] = stored_length
            response.headers["Age"] = str(age)
            return response
        state.cache_status = "MISS"
        return None

    def key(self) -> str:
        path, _, query = raw_target(request.environ).partition("?")
        parts = [request.method, path, "&".join(sorted(query.split("&"))) if query else ""]
        state = request_state.current()
        if self.by_consumer:
            parts.append(state.consumer or "")
        if state.branch == "canary":  # a canary's answers are never served to the primary's
            parts.append("canary")
        return "\n".join(parts)

    # -- after: label, and store what may be stored ---------------------------------

    def after(self, response: Response) -> Response:
        state = request_state.current()
        status = state.cache_status or "BYPASS"
        response.headers["X-Cache-Status"] = status
        if status != "HIT" and "Age" not in response.headers:
            response.headers["Age"] = "0"
        self.on_result(status)
        key = state.cache_key
        if status == "HIT" or key is None:
            return response
        ttl = self.storable_for(response)
        if ttl is None:
            return response
        vary = {h: request.headers.get(h, "")
                for h in header_tokens(response.headers.get("Vary")) if h.lower() != "origin"}
        headers = [(k, v) for k, v in response.headers.items() if k.lower() not in _NOT_STORED]
        reason = response.status.partition(" ")[2]
        template = Entry(response.status_code, reason, headers, b"", self.clock(), ttl, vary)
        body = response.response
        if isinstance(body, UpstreamBody):
            if request.method == "HEAD":
                self._put(key, template)
            else:
                body.subscribe(_Recorder(self, key, template, self.config.max_body_bytes))
        elif not response.is_streamed:
            data = response.get_data()
            if len(data) <= self.config.max_body_bytes:
                template.body = data
                self._put(key, template)
        return response

    def storable_for(self, response: Response) -> float | None:
        """The TTL to store this answer for, or None when it must not be stored."""
        if response.status_code not in self.config.statuses or "Set-Cookie" in response.headers:
            return None
        if is_stream(response.headers.get("Content-Type")):
            return None  # events and lines are for whoever listens now, not for later
        directives = response.headers.get("Cache-Control", "").lower()
        if any(d in directives for d in ("no-store", "private", "no-cache")):
            return None
        if "*" in response.headers.get("Vary", ""):
            return None
        ttl = self.config.ttl
        ages = dict(_MAX_AGE.findall(directives))
        max_age = ages.get("s-maxage", ages.get("max-age"))
        if max_age is not None:
            ttl = min(ttl, float(max_age))
        length = response.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) > self.config.max_body_bytes:
            return None
        return ttl if ttl > 0 else None

    # -- the store, failing open ----------------------------------------------------

    def _get(self, key: str) -> Entry | None:
        try:
            return self.store.get(key)
        except BACKEND_ERRORS as exc:
            self.on_storage_error(exc)
            log.warning("cache store unreachable, treating as a miss: %s", exc)
            return None

    def _put(self, key: str, entry: Entry) -> None:
        try:
            self.store.put(key, entry)
        except BACKEND_ERRORS as exc:
            self.on_storage_error(exc)
            log.warning("cache store unreachable, answer not stored: %s", exc)


class _Recorder(BodyCopy):
    """Keeps a copy of a streamed body until it ends (stored) or grows too big (dropped)."""

    def __init__(self, cache: ResponseCache, key: str, entry: Entry, limit: int):
        super().__init__(limit)
        self.cache, self.key, self.entry = cache, key, entry

    def on_complete(self) -> None:
        # before the server writes the end of the body: the next request can hit
        data = self.take()
        if data is not None:
            self.entry.body = data
            self.cache._put(self.key, self.entry)
