"""Shared state behind one URI: ``memory://`` for one process, ``redis://`` for many.

Quotas go through Flask-Limiter's ``limits`` storage; the response cache and
the circuit breakers use that same storage's Redis client when there is one,
so one URI and one connection pool serve all three. Any failure to reach the
store surfaces as one of :data:`BACKEND_ERRORS`; ``on_storage_error`` decides
what a quota does then, and the cache and breakers fail open (logged, counted).
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import redis
from limits.errors import StorageError
from limits.storage import RedisStorage, storage_from_string
from limits.storage import Storage as LimitsStorage

from .config.types import is_redis

#: A gateway must not hang on its store: fail fast and apply on_storage_error.
REDIS_TIMEOUT = 0.5

#: Exception types that mean "the store cannot be reached".
BACKEND_ERRORS: tuple[type[Exception], ...] = (StorageError, redis.RedisError, OSError)


def storage_options(uri: str) -> dict:
    """Options for ``limits.storage_from_string``: wrapped errors, short timeouts."""
    options: dict = {"wrap_exceptions": True}
    if is_redis(uri):
        options.update(socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT)
    return options


def redis_client(storage: LimitsStorage) -> redis.Redis | None:
    """The redis-py client inside a ``limits`` Redis storage; None for memory://."""
    if isinstance(storage, RedisStorage):
        return storage.get_connection()  # type: ignore[return-value]
    return None


def open_storage(uri: str) -> LimitsStorage:
    """The one ``limits`` storage for a URI; cache and breakers use its client."""
    return storage_from_string(uri, **storage_options(uri))  # type: ignore[return-value]


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
