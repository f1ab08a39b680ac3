"""A document compiled into its operations: found by method and path, their validators ready.

:func:`compile_document` runs once per worker, at start and on reload; a
request only looks its operation up (:meth:`Operations.find`) and runs the
validators made here. Path templates become regular expressions; as OpenAPI
says, a concrete path (``/items/mine``) wins over a template that also
matches it (``/items/{id}``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .document import HTTP_METHODS, DocumentError, components_for, resolve, validator, version

#: header parameters OpenAPI says are ignored (they are the transport's)
IGNORED_HEADERS = frozenset({"accept", "content-type", "authorization"})
#: never echoed in an answer or a log line, whatever the document says
SECRET_HEADERS = frozenset({"authorization", "cookie", "x-api-key", "proxy-authorization"})


@dataclass
class Parameter:
    name: str
    location: str
    required: bool
    style: str
    explode: bool
    #: the schema's ``type`` (``array``, ``object``, a primitive, or "" when it has none)
    kind: str
    #: the types of an array's items, or of an object's properties, for casting strings
    item_kind: str = ""
    property_kinds: dict[str, str] = field(default_factory=dict)
    #: its value is never shown (``format: password``, or a credential header)
    secret: bool = False
    check: Any = None
    #: ``f(explode, name, type, source)``: openapi-core's reader for its style; None when
    #: the style is none OpenAPI defines (the parameter is then not checked)
    deserialize: Any = None


@dataclass
class Body:
    required: bool
    #: media type (lower case, maybe ``type/*``) -> validator, None when it has no schema
    media: dict[str, Any]
    #: media type -> {property: type} for form-encoded bodies
    form_kinds: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass
class Operation:
    method: str
    #: the path template as the document writes it
    template: str
    #: the metric's ``operation`` label: the operationId, else ``METHOD template``
    name: str
    parameters: list[Parameter]
    body: Body | None
    #: status (``200``, ``2XX``, ``default``) -> media type -> validator (None: no schema)
    responses: dict[str, dict[str, Any]]


@dataclass
class Operations:
    """Every operation of one document."""

    openapi: str
    #: (compiled template, path template, {method: Operation}), concrete paths first
    paths: list[tuple[re.Pattern, str, dict[str, Operation]]]

    def find(self, method: str, path: str) -> tuple[Operation | None, dict[str, str], list[str]]:
        """The operation, the path parameters' raw values, and, when the path is
        described but not for this method, the methods it has (empty: not described)."""
        for pattern, _, by_method in self.paths:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            operation = by_method.get(method.lower())
            if operation is None:
                return None, {}, sorted(m.upper() for m in by_method)
            return operation, match.groupdict(), []
        return None, {}, []


def compile_document(document: dict) -> Operations:
    """Compile every operation; DocumentError when something cannot be compiled."""
    openapi = version(document)
    components = components_for(document, openapi)
    paths = []
    for template, item in (document.get("paths") or {}).items():
        if not isinstance(item, dict) or not str(template).startswith("/"):
            continue
        item = resolve(document, item)
        shared = [resolve(document, p) for p in item.get("parameters") or []]
        by_method = {}
        for method in HTTP_METHODS:
            operation = item.get(method)
            if not isinstance(operation, dict):
                continue
            own = [resolve(document, p) for p in operation.get("parameters") or []]
            # an operation's parameter overrides the path item's of the same name and place
            merged = {(p.get("name"), p.get("in")): p for p in (*shared, *own)}
            name = operation.get("operationId") or f"{method.upper()} {template}"
            try:
                by_method[method] = Operation(
                    method, template, str(name),
                    [_parameter(p, document, components, openapi) for p in merged.values()
                     if p.get("in") != "header" or p.get("name", "").lower() not in IGNORED_HEADERS],
                    _body(operation.get("requestBody"), document, components, openapi),
                    _responses(operation.get("responses") or {}, document, components, openapi))
            except ValueError as exc:  # jsonschema_rs: a schema it cannot compile
                raise DocumentError(f"{method.upper()} {template}: {exc}") from None
        if by_method:
            paths.append((_pattern(template), template, by_method))
    # concrete before templated, then the most literal characters first
    paths.sort(key=lambda entry: (entry[1].count("{"), -len(re.sub(r"\{[^}]*\}", "", entry[1]))))
    return Operations(openapi, paths)


def _pattern(template: str) -> re.Pattern:
    parts = re.split(r"(\{[^}/]+\})", template)
    return re.compile("".join(
        f"(?P<{_group(part[1:-1])}>[^/]+)" if part.startswith("{") else re.escape(part)
        for part in parts))


def _group(name: str) -> str:
    """A regex group name for a path parameter (names like ``item-id`` are allowed)."""
    return "p_" + "".join(c if c.isalnum() else f"_{ord(c):x}_" for c in name)


def path_values(groups: dict[str, str], parameters: list[Parameter]) -> dict[str, str]:
    """The path parameters' raw values by their names."""
    return {p.name: groups[_group(p.name)] for p in parameters
            if p.location == "path" and _group(p.name) in groups}


def _kind(schema: Any, document: dict) -> str:
    schema = resolve(document, schema)
    if not isinstance(schema, dict):
        return ""
    kind = schema.get("type")
    if isinstance(kind, list):  # 3.1: ["integer", "null"]
        kind = next((k for k in kind if k != "null"), "")
    if not kind:  # anyOf: [{type: array}, {type: null}], as FastAPI writes optionals
        for option in schema.get("anyOf") or schema.get("oneOf") or []:
            found = _kind(option, document)
            if found and found != "null":
                return found
    return kind or ""


def _parameter(spec: dict, document: dict, components: dict, openapi: str) -> Parameter:
    location = spec.get("in", "query")
    schema = resolve(document, spec.get("schema", {}))
    style = spec.get("style") or {"query": "form", "cookie": "form"}.get(location, "simple")
    kind = _kind(schema, document)
    parameter = Parameter(
        name=spec["name"], location=location,
        required=bool(spec.get("required")) or location == "path",
        style=style, explode=spec.get("explode", style == "form"), kind=kind,
        secret=(isinstance(schema, dict) and schema.get("format") == "password")
        or (location == "header" and spec["name"].lower() in SECRET_HEADERS))
    if kind == "array":
        parameter.item_kind = _kind(_items(schema, document), document)
    elif kind == "object":
        parameter.property_kinds = _property_kinds(schema, document)
    parameter.check = validator(spec.get("schema", {}), components, openapi)
    # imported here, by the services that validate: openapi-core costs a worker 18 MiB
    from openapi_core.deserializing.styles import style_deserializers
    parameter.deserialize = style_deserializers.get(style)
    return parameter


def _items(schema: Any, document: dict) -> Any:
    schema = resolve(document, schema)
    if isinstance(schema, dict) and "items" in schema:
        return schema["items"]
    for option in (schema or {}).get("anyOf") or []:
        if isinstance(resolve(document, option), dict) and "items" in resolve(document, option):
            return resolve(document, option)["items"]
    return {}


def _property_kinds(schema: Any, document: dict) -> dict[str, str]:
    schema = resolve(document, schema)
    properties = schema.get("properties") if isinstance(schema, dict) else None
    return {name: _kind(child, document) for name, child in (properties or {}).items()}


def _body(spec: Any, document: dict, components: dict, openapi: str) -> Body | None:
    if spec is None:
        return None
    spec = resolve(document, spec)
    media, form_kinds = {}, {}
    for media_type, content in (spec.get("content") or {}).items():
        key = media_type.split(";")[0].strip().lower()
        schema = content.get("schema") if isinstance(content, dict) else None
        media[key] = None if schema is None else validator(schema, components, openapi)
        if key == "application/x-www-form-urlencoded" and schema is not None:
            form_kinds[key] = _property_kinds(schema, document)
    return Body(bool(spec.get("required")), media, form_kinds)


def _responses(spec: dict, document: dict, components: dict, openapi: str
               ) -> dict[str, dict[str, Any]]:
    answers: dict[str, dict[str, Any]] = {}
    for status, answer in spec.items():
        answer = resolve(document, answer)
        answers[str(status).upper() if str(status) != "default" else "default"] = {
            media.split(";")[0].strip().lower():
                None if not isinstance(content, dict) or content.get("schema") is None
                else validator(content["schema"], components, openapi)
            for media, content in ((answer or {}).get("content") or {}).items()}
    return answers
