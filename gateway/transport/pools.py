"""Connection pools that forward the request target byte for byte.

``urlopen`` percent-normalises targets (``%2f`` becomes ``%2F``, ``|`` is
escaped); a proxy must forward the client's bytes. ``urlopen`` hands its extra
keywords to ``_make_request`` (a private urllib3 method, hence the pinned
urllib3 range in setup.cfg), which is where the raw target is put back.
"""

from __future__ import annotations

from typing import Any

from requests.adapters import HTTPAdapter
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool


class _RawTargetMixin:
    def _make_request(self, conn, method, url, *args, request_target=None, **kwargs):
        return super()._make_request(  # type: ignore[misc]
            conn, method, request_target or url, *args, **kwargs)


class RawTargetHTTPConnectionPool(_RawTargetMixin, HTTPConnectionPool):
    pass


class RawTargetHTTPSConnectionPool(_RawTargetMixin, HTTPSConnectionPool):
    pass


class ProxyAdapter(HTTPAdapter):
    """requests' adapter with pools that forward request targets unchanged."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {  # type: ignore[assignment]
            "http": RawTargetHTTPConnectionPool, "https": RawTargetHTTPSConnectionPool}
