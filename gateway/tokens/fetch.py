"""The identity providers' HTTP calls, through the one upstream call path.

Each origin (scheme://host:port) gets an :class:`~gateway.transport.Upstream`
of its own, made on first use: pooled connections, a 2 s timeout, no retries
(the key policy decides when to try again), and its failures translated like
any upstream's.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlsplit

import requests

from ..transport import Reach, Upstream, UpstreamError

TIMEOUT = 2.0


class FetchError(Exception):
    """The identity provider could not be asked, or answered something unusable."""


class Fetcher:
    def __init__(self):
        self._upstreams: dict[str, Upstream] = {}
        self._lock = threading.Lock()

    def _upstream(self, url: str) -> tuple[Upstream, str]:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        with self._lock:
            upstream = self._upstreams.get(origin)
            if upstream is None:
                upstream = self._upstreams[origin] = Upstream(
                    Reach(origin, (origin,), connect_timeout=TIMEOUT, read_timeout=TIMEOUT),
                    pool_size=10)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return upstream, path

    def json(self, url: str, method: str = "GET", **kwargs: Any) -> Any:
        """The JSON answer of a 200, else :class:`FetchError` saying why."""
        upstream, path = self._upstream(url)
        try:
            response: requests.Response = upstream.call(method, path, **kwargs)
        except UpstreamError as exc:
            raise FetchError(f"{url}: {exc.message}") from None
        if response.status_code != 200:
            raise FetchError(f"{url} answered {response.status_code}")
        try:
            return response.json()
        except ValueError:
            raise FetchError(f"{url} did not answer JSON") from None
