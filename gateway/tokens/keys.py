"""One issuer's signing keys, and when to fetch them again.

- Fetched on first need (discovery first when no ``jwks_uri`` is configured).
- Fresh for ``cache_duration``; then refreshed on the next need. A refresh
  that fails keeps the old keys serving (a warning): an IdP outage must not
  become the gateway's. A key missing from a refresh that succeeded is gone.
- A ``kid`` not in the set, like a failed refresh, asks again at most once per
  ``min_refetch_interval``.
- Single flight: concurrent requests needing a fetch wait on one, not one each;
  a request that arrives while a fetch is in flight waits for it (bounded by
  the fetch's timeout) and uses what it brought, instead of finding no keys.
- Never fetched successfully and unreachable: :class:`KeysUnavailable` (503).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from jwt import PyJWK, PyJWKError

from ..config.issuers import IssuerConfig
from .fetch import Fetcher, FetchError

log = logging.getLogger("gateway.tokens")


class KeysUnavailable(Exception):
    """No keys could ever be fetched: the IdP is down (seconds to retry after)."""

    def __init__(self, reason: str, retry_after: int):
        super().__init__(reason)
        self.retry_after = retry_after


class IssuerKeys:
    def __init__(self, name: str, config: IssuerConfig, fetcher: Fetcher,
                 clock: Callable[[], float] = time.monotonic):
        """:param clock: seconds now (tests move it by hand)."""
        self.clock = clock
        self.name = name
        self.config = config
        self.fetcher = fetcher
        self.keys: dict[str | None, PyJWK] = {}
        self.fetched_at: float | None = None      # last successful fetch (monotonic)
        self.attempted_at: float = float("-inf")   # last attempt began, successful or not
        self.finished_at: float = float("-inf")    # ... and ended
        self.discovery: dict | None = None
        self._lock = threading.Lock()
        self._in_flight = False

    def key(self, kid: str | None) -> PyJWK | None:
        """The key for ``kid`` (None: the token names no key, and the set has one)."""
        now = self.clock()
        fresh = self.fetched_at is not None and now - self.fetched_at < self.config.cache_duration
        if kid in self.keys and fresh:
            return self.keys[kid]
        # stale keys, none yet, or an unknown kid (the key may have rotated in):
        # ask again, but never more often than min_refetch_interval
        if self._in_flight or now - self.attempted_at >= self.config.min_refetch_interval:
            self._refresh(now)
        self._check_available()
        if kid is None and len(self.keys) == 1:
            return next(iter(self.keys.values()))
        return self.keys.get(kid)

    def _refresh(self, asked_at: float) -> None:
        with self._lock:  # single flight: whoever waited here finds the fetch done
            if self.finished_at >= asked_at:
                return  # a fetch ended after we asked: its outcome is ours
            self._in_flight = True
            self.attempted_at = self.clock()
            try:
                self.keys = self._fetch()
                self.fetched_at = self.clock()
            except FetchError as exc:
                if self.fetched_at is not None:
                    log.warning("issuers.%s: refreshing the keys failed (%s); the keys fetched "
                                "earlier go on serving", self.name, exc)
                else:
                    log.warning("issuers.%s: no keys yet: %s", self.name, exc)
            finally:
                self._in_flight = False
                self.finished_at = self.clock()

    def _check_available(self) -> None:
        if self.fetched_at is None:
            retry = max(1, int(self.config.min_refetch_interval) or 1)
            raise KeysUnavailable(f"the keys of issuer {self.name!r} cannot be fetched", retry)

    def _fetch(self) -> dict[str | None, PyJWK]:
        document = self.fetcher.json(self.jwks_uri())
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise FetchError("the JWKS has no keys list")
        keys: dict[str | None, PyJWK] = {}
        for entry in document["keys"]:
            if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
                continue
            try:
                keys[entry.get("kid")] = PyJWK(entry)
            except PyJWKError:
                continue  # a key type or algorithm we do not accept: skipped, not fatal
        return keys

    def jwks_uri(self) -> str:
        if self.config.jwks_uri:
            return self.config.jwks_uri
        uri = self.discover().get("jwks_uri")
        if not isinstance(uri, str):
            raise FetchError("the discovery document names no jwks_uri")
        return uri

    def discover(self) -> dict:
        if self.discovery is None:
            url = self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
            document = self.fetcher.json(url)
            if not isinstance(document, dict):
                raise FetchError(f"{url} is not a discovery document")
            self.discovery = document
        return self.discovery
