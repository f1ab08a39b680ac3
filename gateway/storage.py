"""Shared state behind one URI: ``memory://`` for one process, ``redis://`` for many.

Quotas count in a ``limits`` storage (gateway/policies/quota.py); the response cache and
the circuit breakers use that same storage's Redis client when there is one,
so one URI and one connection pool serve all three. Any failure to reach the
store surfaces as one of :data:`BACKEND_ERRORS`; ``on_storage_error`` decides
what a quota does then, and the cache and breakers fail open (logged, counted).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
from limits.errors import ConfigurationError, StorageError
from limits.storage import RedisClusterStorage, RedisStorage, storage_from_string
from limits.storage import Storage as LimitsStorage
from redis.exceptions import RedisClusterException

from .config.types import is_redis

#: A gateway must not hang on its store: fail fast and apply on_storage_error.
REDIS_TIMEOUT = 0.5

#: How often a Cluster that was down at start is asked again.
CLUSTER_RETRY = 2.0

#: Exception types that mean "the store cannot be reached".
BACKEND_ERRORS: tuple[type[Exception], ...] = (StorageError, redis.RedisError, OSError)


def storage_options(uri: str) -> dict:
    """Options for ``limits.storage_from_string``: wrapped errors, short timeouts."""
    options: dict = {"wrap_exceptions": True}
    if is_redis(uri):
        options.update(socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT)
    return options


def redis_connection(storage: LimitsStorage | None) -> Callable[[], Any] | None:
    """``f() -> client`` for a ``limits`` Redis storage (plain, Sentinel or Cluster),
    asked on every operation so the cache and breakers follow a Sentinel failover and a
    Cluster that was down at start; None for memory://."""
    if isinstance(storage, RedisStorage):
        return storage.get_connection
    return None


class Script:
    """A Lua script, registered on the storage's client when first run (a Cluster
    that was down at start has no client before that); redis-py loads it again
    where a server lacks it (``NOSCRIPT`` after a failover)."""

    def __init__(self, storage: RedisStorage, source: str):
        self.storage, self.source = storage, source
        self._script: Any = None

    def __call__(self, keys: list[str], args: list) -> list:
        if self._script is None:
            self._script = self.storage.get_connection().register_script(
                self.source)  # type: ignore[arg-type]
        return self._script(keys, args)


def open_storage(uri: str) -> LimitsStorage:
    """The one ``limits`` storage for a URI; quotas, cache and breakers all use it."""
    options = storage_options(uri)
    if uri.startswith("redis+cluster://"):
        return DeferredClusterStorage(uri, **options)
    return storage_from_string(uri, **options)  # type: ignore[return-value]


class DeferredClusterStorage(RedisClusterStorage):
    """limits' Cluster storage, made even while the Cluster is down.

    A Cluster client connects when it is made, so a Cluster that is down at
    start would stop every worker from booting. This one starts without it:
    until the Cluster answers, every operation raises a connection error (the
    gateway fails open, as for any store outage) and the Cluster is asked again
    at most every :data:`CLUSTER_RETRY` seconds.
    """

    def __init__(self, uri: str, **options: Any):
        LimitsStorage.__init__(self, uri, options.pop("wrap_exceptions", False))
        self._uri, self._options = uri, options
        self._asked_at = float("-inf")
        self._connecting = threading.Lock()
        self.storage = None
        self._connect()

    def _connect(self) -> None:
        self._asked_at = time.monotonic()
        try:
            RedisClusterStorage.__init__(self, self._uri, wrap_exceptions=self.wrap_exceptions,
                                         **self._options)
        except (RedisClusterException, redis.RedisError, ConfigurationError, OSError):
            self.storage = None

    def get_connection(self, readonly: bool = False) -> Any:
        if self.storage is None:
            with self._connecting:
                if self.storage is None and time.monotonic() - self._asked_at >= CLUSTER_RETRY:
                    self._connect()
            if self.storage is None:
                raise redis.ConnectionError(f"the Redis Cluster {shown(self._uri)} does not "
                                            "answer yet")
        return self.storage

    def __getattr__(self, name: str) -> Any:
        # limits' scripts (lua_*) exist once connected: asking for one connects first
        if name.startswith("lua_"):
            self.get_connection()
            return object.__getattribute__(self, name)
        raise AttributeError(name)


def shown(uri: str) -> str:
    """The URI as logs and pages show it: any password replaced by ``***``."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def what_fails(on_storage_error: str) -> str:
    """What the gateway does while the store is down, in words."""
    if on_storage_error == "deny":
        return ("quotas refuse requests (503 storage_unavailable, on_storage_error: deny); "
                "the response cache and circuit breakers fail open")
    return "quotas, the response cache and circuit breakers fail open (requests pass, uncounted)"


def unreachable_warning(uri: str, on_storage_error: str) -> str | None:
    """A warning when a Redis ``storage`` does not answer now (``gateway check``, which the
    gunicorn master runs at start and on every reload), else None."""
    if not is_redis(uri):
        return None
    try:
        answers = open_storage(uri).check()
    except BACKEND_ERRORS + (ValueError,):
        answers = False
    if answers:
        return None
    return (f"storage: {shown(uri)} does not answer; until it does, {what_fails(on_storage_error)}. "
            "/readyz and the status page show it too")
