"""One OpenAPI 3.1 document for everything the gateway serves.

:func:`build_document` merges, in route order:

- each service's own document (``openapi:``), its paths moved under the
  service's prefix when ``strip_prefix`` is on (and, when it is off, only the
  paths the prefix routes to the service), its operations limited to the
  service's ``methods``; component names two services both define
  differently become ``<service>.<Name>``, with every ``$ref`` rewritten;
- a catch-all path item (``<prefix>/{path}``) for a service without one;
- the hand-written blueprints' rules and the aggregates, with their path
  parameters (an aggregate's answer schema is built from its calls);
- on every operation: the ``X-API-Key`` scheme where the route has API
  keys, and the gateway's own error answers that route can give, with the
  JSON error schema (401 and 403 only with authentication or IP rules, 429
  only with a quota).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable
from typing import Any

from ..config import BlueprintConfig, GatewayConfig, RoutePolicies, ServiceConfig
from ..config.aggregates import REFERENCE, AggregateConfig
from ..validation.document import HTTP_METHODS

#: The answers the gateway itself may give on any route.
GATEWAY_ERRORS = {
    "400": "Bad request (a path or body the gateway refuses)",
    "401": "Missing or unknown API key",
    "403": "Not allowed (consumer or client address)",
    "413": "Request body too large",
    "429": "Quota exceeded: rate_limited (RateLimit-* and Retry-After say when to retry) or "
           "quota_exhausted (the consumer's allowance for the month or day is used up; "
           "X-Quota-* and Retry-After say when it renews)",
    "502": "The upstream could not be reached or answered badly",
    "503": "The upstream is unavailable (circuit open) or the quota store is down",
    "504": "The upstream did not answer in time",
}
SECURITY_SCHEME = "ApiKey"
_RULE_PART = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")
_CONVERTER_TYPES = {"int": {"type": "integer"}, "float": {"type": "number"},
                    "uuid": {"type": "string", "format": "uuid"}}


def build_document(config: GatewayConfig, documents: dict[str, dict | None],
                   blueprint_rules: Iterable[tuple[BlueprintConfig, Any]] = (),
                   title: str = "API gateway") -> dict:
    """The merged document.

    :param documents: each service's own document (None: not available).
    :param blueprint_rules: ``(blueprint entry, werkzeug Rule)`` for the hand-written routes.
    """
    components: dict[str, dict] = {"schemas": {"GatewayError": _ERROR_SCHEMA,
                                               "AggregateCallError": _CALL_ERROR_SCHEMA},
                                   "securitySchemes": {SECURITY_SCHEME: {
                                       "type": "apiKey", "in": "header", "name": "X-API-Key"},
                                       "Bearer": {"type": "http", "scheme": "bearer",
                                                  "bearerFormat": "JWT"}}}
    renames = _component_renames({n: d for n, d in documents.items() if d})
    for name, document in documents.items():
        if document:
            for kind, entries in (document.get("components") or {}).items():
                for key, value in (entries or {}).items():
                    new = renames.get((name, kind, key), key)
                    value = _rewrite_refs(value, name, renames)
                    if new != key and isinstance(value, dict) and "title" in value:
                        value["title"] = new  # what Swagger UI shows: keep the two apart
                    components.setdefault(kind, {})[new] = value
    paths: dict[str, dict] = {}
    service_paths: dict[str, dict[str, dict]] = {}
    for name, service in config.services.items():
        document = documents.get(name)
        items = (_service_paths(service, config, document, renames) if document
                 else _catch_all(service, config))
        service_paths[name] = items
        for path, item in items.items():
            paths.setdefault(path, item)
    for entry, rule in blueprint_rules:
        path, parameters = _openapi_path(rule.rule)
        item = paths.setdefault(path, {"parameters": parameters} if parameters else {})
        for method in sorted(set(rule.methods or ()) - {"HEAD", "OPTIONS"}):
            item[method.lower()] = _operation(entry, config, [entry.loaded.name], {
                "summary": f"{rule.endpoint} (hand-written blueprint)",
                "responses": {"200": {"description": "The blueprint's answer"}}})
    for aggregate in config.aggregates:
        path, parameters = _openapi_path(aggregate.path)
        item = {"get": _operation(aggregate, config, ["aggregates"], {
            "summary": f"Aggregate of {', '.join(aggregate.calls)}",
            "operationId": f"aggregate_{aggregate.route_name}",
            "responses": {"200": _aggregate_answer(aggregate, config, documents, service_paths)}})}
        if parameters:
            item["parameters"] = parameters
        paths[path] = item
    for path, summary in (("/healthz", "The gateway process answers"),
                          ("/readyz", "This gateway can serve (upstream health in the body)")):
        paths[path] = {"get": {"tags": ["gateway"], "summary": summary, "responses": {
            "200": {"description": "Yes"}, "503": {"description": "No (readyz lists why)"}}}}
    return {"openapi": "3.1.0",
            "info": {"title": title, "version": "1.0",
                     "description": "Every route of the gateway: the services' own documents "
                                    "merged under their prefixes, the hand-written blueprints "
                                    "and the aggregates."},
            "paths": dict(sorted(paths.items())), "components": components}


_ERROR_SCHEMA = {"type": "object", "required": ["error", "message", "request_id"], "properties": {
    "error": {"type": "string", "description": "a short code, e.g. rate_limited"},
    "message": {"type": "string", "description": "what went wrong and what to do"},
    "request_id": {"type": "string"}}}
_CALL_ERROR_SCHEMA = {"type": "object", "properties": {
    "status": {"type": "integer"}, "error": {"type": "string"}, "message": {"type": "string"}}}


def _gateway_errors(route: RoutePolicies, config: GatewayConfig) -> dict[str, str]:
    """The gateway's own answers this route can give."""
    errors = dict(GATEWAY_ERRORS)
    if not route.auth_methods:
        errors.pop("401")
        if not (route.allow_ips or route.deny_ips):
            errors.pop("403")
    if not config.has_quota(route):
        errors.pop("429")
    return errors


def _operation(route: RoutePolicies, config: GatewayConfig, tags: list[str],
               operation: dict) -> dict:
    """An operation with the gateway's own answers, and the API key where one is needed."""
    auth = route.auth
    operation = dict(operation)
    operation.setdefault("tags", tags)
    responses = operation["responses"] = dict(operation.get("responses") or {})
    for code, description in _gateway_errors(route, config).items():
        responses.setdefault(code, {"description": description, "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/GatewayError"}}}})
    methods = frozenset(auth) if isinstance(auth, list) else {auth}
    pairs = (("api_key", SECURITY_SCHEME), ("jwt", "Bearer"))
    schemes: list[dict[str, list]] = [{name: []} for method, name in pairs if method in methods]
    if schemes:
        operation["security"] = schemes
    return operation


def _service_paths(service: ServiceConfig, config: GatewayConfig, document: dict,
                   renames: dict[tuple[str, str, str], str]) -> dict[str, dict]:
    prefix = "" if service.prefix == "/" else service.prefix
    transform = service.transform
    items = {}
    for upstream_path, item in (document.get("paths") or {}).items():
        if not isinstance(item, dict) or not str(upstream_path).startswith("/"):
            continue
        if service.strip_prefix:
            path = prefix + upstream_path if upstream_path != "/" or not prefix else prefix
        elif upstream_path == prefix or upstream_path.startswith(prefix + "/") or not prefix:
            path = upstream_path
        else:
            continue  # the gateway does not route this path to the service
        item = _rewrite_refs(item, service.name, renames)
        for method in HTTP_METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            if method.upper() not in service.methods:
                del item[method]
                continue
            operation = dict(operation)
            if "operationId" in operation:
                operation["operationId"] = f"{service.name}.{operation['operationId']}"
            if transform and transform.request.body and "requestBody" in operation:
                operation["requestBody"] = {"description": "reshaped by the gateway's transform "
                                            f"{transform.request.body!r}", "content": {
                                                "application/json": {"schema": {}}}}
            if transform and transform.response.body:
                operation["responses"] = _reshaped_answers(operation.get("responses") or {},
                                                           transform.response.body)
            item[method] = _operation(service, config, [service.name], operation)
        if any(method in item for method in HTTP_METHODS):
            items[path] = item
    return items


def _reshaped_answers(responses: dict, expression: str) -> dict:
    reshaped = dict(responses)
    for code in responses:
        if str(code).startswith("2"):
            reshaped[code] = {"description": f"reshaped by the gateway's transform {expression!r}",
                              "content": {"application/json": {"schema": {}}}}
    return reshaped


def _catch_all(service: ServiceConfig, config: GatewayConfig) -> dict[str, dict]:
    prefix = "" if service.prefix == "/" else service.prefix
    parameter = {"name": "path", "in": "path", "required": True, "schema": {"type": "string"},
                 "description": f"any path under {service.prefix}"}
    item: dict[str, Any] = {"parameters": [parameter]}
    for method in service.methods:
        if method.lower() == "options":
            continue
        item[method.lower()] = _operation(service, config, [service.name], {
            "summary": f"Anything under {service.prefix}, passed to the {service.name} service",
            "description": "The service publishes no OpenAPI document (set `openapi:` on it).",
            "operationId": f"{service.name}.{method.lower()}",
            "responses": {"default": {"description": f"the {service.name} service's answer"}}})
    return {f"{prefix}/{{path}}": item}


def _openapi_path(rule: str) -> tuple[str, list[dict]]:
    """``/users/<int:user_id>`` -> ``/users/{user_id}`` and its path parameters."""
    parameters = []
    for converter, name in _RULE_PART.findall(rule):
        schema = dict(_CONVERTER_TYPES.get(converter, {"type": "string"}))
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
    return _RULE_PART.sub(lambda m: "{" + m.group(2) + "}", rule), parameters


def _aggregate_answer(aggregate: AggregateConfig, config: GatewayConfig,
                      documents: dict[str, dict | None],
                      service_paths: dict[str, dict[str, dict]]) -> dict:
    headers = {"X-Gateway-Completed": {"description": "false when a call failed (see _errors)",
                                       "schema": {"type": "string", "enum": ["true", "false"]}}}
    if aggregate.shape:
        schema: dict = {"description": f"the calls' answers shaped by {aggregate.shape!r}"}
    else:
        properties = {}
        for name, call in aggregate.calls.items():
            properties[name] = {} if call.select else _call_schema(
                call.path, config.services[call.service], service_paths.get(call.service, {}))
            properties[name] = {**properties[name],
                                "description": f"{call.method} {call.path} on {call.service}"
                                               + (f", then {call.select!r}" if call.select else "")}
        properties["_errors"] = {"type": "object", "description": "why each failed call failed",
                                 "additionalProperties": {
                                     "$ref": "#/components/schemas/AggregateCallError"}}
        schema = {"type": "object", "properties": properties}
    return {"description": "The calls' answers, one key per call", "headers": headers,
            "content": {"application/json": {"schema": schema}}}


def _call_schema(call_path: str, service: ServiceConfig, items: dict[str, dict]) -> dict:
    """The JSON schema of the service's GET answer at the call's path, when documented."""
    prefix = "" if service.prefix == "/" or not service.strip_prefix else service.prefix
    wanted = (prefix + REFERENCE.sub("{}", call_path)).split("/")
    for path, item in items.items():
        segments = path.split("/")
        if len(segments) == len(wanted) and all(
                a == b or a.startswith("{") or b == "{}" for a, b in zip(segments, wanted, strict=True)):
            try:
                return dict(item["get"]["responses"]["200"]["content"]["application/json"]["schema"])
            except (KeyError, TypeError):
                return {}
    return {}


def _component_renames(documents: dict[str, dict]) -> dict[tuple[str, str, str], str]:
    """(service, kind, name) -> ``service.name`` for names that services define differently."""
    seen: dict[tuple[str, str], dict[str, str]] = {}
    for service, document in documents.items():
        for kind, entries in (document.get("components") or {}).items():
            for key, value in (entries or {}).items() if isinstance(entries, dict) else ():
                seen.setdefault((kind, key), {})[service] = json.dumps(value, sort_keys=True)
    renames = {}
    for (kind, key), definitions in seen.items():
        if len(set(definitions.values())) > 1 or (kind, key) == ("schemas", "GatewayError"):
            for service in definitions:
                renames[(service, kind, key)] = f"{service}.{key}"
    return renames


def _rewrite_refs(value: Any, service: str, renames: dict[tuple[str, str, str], str]) -> Any:
    """A deep copy with ``#/components/<kind>/<name>`` refs pointing at the renamed components."""
    if isinstance(value, dict):
        copied = {k: _rewrite_refs(v, service, renames) for k, v in value.items()}
        ref = copied.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/"):
            _, _, kind, *rest = ref.split("/")
            name = "/".join(rest)
            if (service, kind, name) in renames:
                copied["$ref"] = f"#/components/{kind}/{renames[(service, kind, name)]}"
        return copied
    if isinstance(value, list):
        return [_rewrite_refs(v, service, renames) for v in value]
    return copy.copy(value)
