"""The gateway's OpenAPI document (``/openapi.json``, ``/docs``, ``gateway openapi``).

- :mod:`.sources`: the services' own documents, fetched and kept on disk.
- :mod:`.document`: the merge into one OpenAPI 3.1 document.
- :mod:`.pending`: a document that could not be fetched at start, fetched again.
"""

from __future__ import annotations

import logging

from ..config import GatewayConfig
from ..transport import Upstream
from ..validation.document import DocumentError
from ..validation.services import local_document
from . import sources
from .document import build_document

log = logging.getLogger("gateway.openapi")


def service_documents(config: GatewayConfig, upstreams: dict[str, Upstream],
                      refresh: bool = True,
                      failed: dict[str, str] | None = None) -> dict[str, dict | None]:
    """Each service's own document: its ``openapi_file``, or fetched (or the kept copy).

    :param refresh: ask each service again even when a copy is kept on disk.
    :param failed: filled with why each fetch that failed did (kept copy or not).
    """
    documents: dict[str, dict | None] = {}
    for name, service in config.services.items():
        documents[name] = None
        if service.openapi_file:
            try:
                documents[name] = local_document(config, name)
            except DocumentError as exc:  # checked at load: only a file changed since
                log.warning("services.%s.openapi_file: %s", name, exc)
        elif service.openapi:
            documents[name], problem = sources.obtain(service, upstreams[name], refresh)
            if problem is not None and failed is not None:
                failed[name] = problem
    return documents


def openapi_document(config: GatewayConfig, upstreams: dict[str, Upstream],
                     refresh: bool = True, documents: dict[str, dict | None] | None = None
                     ) -> dict:
    """Fetch what the services publish (or use the kept copies) and merge it all.

    :param refresh: ask each service again even when a copy is kept on disk.
    :param documents: the services' documents, when already had (:func:`service_documents`).
    """
    if documents is None:
        documents = service_documents(config, upstreams, refresh)
    rules = [(entry, rule) for entry in config.blueprints for rule in entry.rules]
    return build_document(config, documents, rules)


__all__ = ["build_document", "openapi_document", "service_documents"]
