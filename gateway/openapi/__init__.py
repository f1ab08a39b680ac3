"""The gateway's OpenAPI document (``/openapi.json``, ``/docs``, ``gateway openapi``).

- :mod:`.sources`: the services' own documents, fetched and kept on disk.
- :mod:`.document`: the merge into one OpenAPI 3.1 document.
"""

from __future__ import annotations

from ..config import GatewayConfig
from ..transport import Upstream
from . import sources
from .document import build_document


def openapi_document(config: GatewayConfig, upstreams: dict[str, Upstream],
                     refresh: bool = True) -> dict:
    """Fetch what the services publish (or use the kept copies) and merge it all.

    :param refresh: ask each service again even when a copy is kept on disk.
    """
    documents = {name: sources.load(service, upstreams[name], refresh) if service.openapi else None
                 for name, service in config.services.items()}
    rules = [(entry, rule) for entry in config.blueprints for rule in entry.rules]
    return build_document(config, documents, rules)


__all__ = ["build_document", "openapi_document"]
