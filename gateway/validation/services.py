"""Each service's document, checked and compiled for validation.

A local document (``openapi_file``) must be valid: :func:`document_checks`
is one of the config's checks, so ``gateway check`` and a start refuse a
broken one, naming the service and the JSON pointer of what is wrong. A
fetched document (``openapi``) can only be judged once it has arrived: an
invalid one is a warning and the service runs unvalidated
(``gateway_validation_active`` 0) until a reload brings a good one.
"""

from __future__ import annotations

import logging

from ..config import GatewayConfig
from .document import DocumentError, read_document, resolve_path, schema_problems
from .operations import Operations, compile_document

log = logging.getLogger("gateway.validation")


def local_document(config: GatewayConfig, name: str) -> dict:
    """The service's ``openapi_file``, read (DocumentError when it cannot be)."""
    service = config.services[name]
    assert service.openapi_file is not None
    return read_document(resolve_path(service.openapi_file, config.source))


def document_checks(config: GatewayConfig) -> list[str]:
    """A problem for each local document that cannot be read or has invalid schemas."""
    problems = []
    for name, service in config.services.items():
        if service.openapi_file is None:
            continue
        where = f"services.{name}.openapi_file"
        try:
            document = local_document(config, name)
        except DocumentError as exc:
            problems.append(f"{where}: {exc}")
            continue
        found = schema_problems(document)
        problems += [f"{where}: invalid schema at {problem}" for problem in found[:10]]
        if not found and service.validate_ is not None:
            try:
                compile_document(document)
            except DocumentError as exc:
                problems.append(f"{where}: {exc}")
    return problems


def service_operations(config: GatewayConfig, documents: dict[str, dict | None]
                       ) -> dict[str, Operations | None]:
    """Each validated service's compiled operations; None: no document yet, or an unusable
    one (said why)."""
    return {name: compiled_operations(name, service.openapi, documents.get(name))
            for name, service in config.services.items() if service.validate_ is not None}


def compiled_operations(name: str, source: str | None, document: dict | None
                        ) -> Operations | None:
    """A document's operations, compiled; None when there is none or it has invalid schemas
    (a WARNING says so: the service then runs unvalidated until a reload brings a good one)."""
    if document is None:
        return None  # missing: the validate step refuses or passes (on_missing_document)
    problems = schema_problems(document)
    if problems:
        log.warning("services.%s.validate: the document from %s has an invalid schema at "
                    "%s; requests pass unvalidated until a good one arrives (a reload)",
                    name, source, problems[0])
        return None
    try:
        return compile_document(document)
    except DocumentError as exc:
        log.warning("services.%s.validate: %s; requests pass unvalidated", name, exc)
        return None
