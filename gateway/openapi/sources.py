"""The services' own OpenAPI documents: fetched from their upstreams, kept on disk.

A service with ``openapi: /openapi.json`` has that path fetched through its
:class:`~gateway.transport.Upstream` (the service's pools, timeout and
breaker). Each document fetched is also written to the cache directory
(``$GATEWAY_OPENAPI_CACHE``, default ``~/.cache/flask-api-gateway/openapi``):
``gateway openapi`` prints from there without asking the services again
until ``--refresh``, and a gateway starting while a service is down uses the
last copy instead of a catch-all. Nothing here ever stops the gateway: a
document that cannot be had is a warning.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from ..config import ServiceConfig
from ..transport import Upstream, UpstreamError

log = logging.getLogger("gateway.openapi")


def cache_dir() -> Path:
    configured = os.environ.get("GATEWAY_OPENAPI_CACHE")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / \
        "flask-api-gateway" / "openapi"


def _cache_file(service: ServiceConfig) -> Path:
    # one file per service and document URL: a changed upstream is not served stale
    where = hashlib.sha256(f"{service.upstream[0]}{service.openapi}".encode()).hexdigest()[:12]
    return cache_dir() / f"{service.name}-{where}.json"


def fetch(service: ServiceConfig, upstream: Upstream) -> tuple[dict | None, str | None]:
    """The service's document from its upstream, and why not when it cannot be had."""
    assert service.openapi
    try:
        response = upstream.call("GET", service.openapi, headers={"Accept": "application/json"})
    except UpstreamError as exc:
        return None, exc.message
    if response.status_code != 200:
        return None, f"{service.openapi} answered {response.status_code}"
    try:
        document: Any = response.json()
    except ValueError:
        return None, f"{service.openapi} is not JSON"
    if not isinstance(document, dict) or not isinstance(document.get("paths"), dict):
        return None, f"{service.openapi} is not an OpenAPI document (no paths)"
    return document, None


def load(service: ServiceConfig, upstream: Upstream, refresh: bool = True) -> dict | None:
    """The service's document: fetched (and cached), else the cached copy, else None.

    :param refresh: ask the upstream even when a cached copy exists.
    """
    return obtain(service, upstream, refresh)[0]


def obtain(service: ServiceConfig, upstream: Upstream,
           refresh: bool = True) -> tuple[dict | None, str | None]:
    """:func:`load`, and why the fetch failed when it did (None when it did not)."""
    path = _cache_file(service)
    if not refresh:
        cached = _read(path)
        if cached is not None:
            return cached, None
    document, problem = fetch(service, upstream)
    if document is not None:
        _write(path, document)
        return document, None
    cached = _read(path)
    if cached is not None:
        log.warning("services.%s.openapi: %s; using the copy fetched earlier (%s)",
                    service.name, problem, path)
        return cached, problem
    if service.validate_ is None:  # else the validate step says what it does meanwhile
        log.warning("services.%s.openapi: %s; the service is documented as a catch-all path "
                    "until its document can be fetched (a reload, or `gateway openapi "
                    "--refresh`)", service.name, problem)
    return None, problem


def keep(service: ServiceConfig, document: dict) -> None:
    """Keep a document fetched later (gateway/openapi/pending.py) as the copy."""
    _write(_cache_file(service), document)


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write(path: Path, document: dict) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(document))
        temporary.replace(path)  # atomic: a reader never sees half a file
    except OSError as exc:
        log.info("could not keep a copy of the document in %s (%s)", path, exc)
