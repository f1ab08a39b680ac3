"""A service's OpenAPI document as validation needs it: read, checked, its schemas made JSON Schema.

OpenAPI 3.1 schemas are JSON Schema 2020-12 as they are. OpenAPI 3.0 schemas
are a dialect of Draft 4 whose one keyword that changes what is valid is
``nullable``: :func:`json_schema` turns ``nullable: true`` into a ``"null"``
type, so that Draft 4 validates them. :func:`schema_problems` names an
invalid schema by the JSON pointer of the keyword at fault
(``/components/schemas/Item/properties/qty/type``), which the structural
check of openapi-spec-validator alone does not reach.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import jsonschema_rs
import yaml

#: The meta-schemas schemas are checked against, by OpenAPI version.
META = {"3.0": "http://json-schema.org/draft-04/schema#",
        "3.1": "https://json-schema.org/draft/2020-12/schema"}
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
#: keywords whose value is a schema, a list of schemas, or a mapping of names to schemas
_ONE = ("items", "additionalProperties", "additionalItems", "not", "contains", "propertyNames",
        "if", "then", "else", "unevaluatedItems", "unevaluatedProperties")
_MANY = ("allOf", "anyOf", "oneOf", "prefixItems")
_NAMED = ("properties", "patternProperties", "definitions", "$defs", "dependentSchemas")


class DocumentError(Exception):
    """The document cannot be read, or is not an OpenAPI 3.0/3.1 document."""


def read_document(path: str) -> dict:
    """A local document, YAML or JSON (JSON is YAML too)."""
    try:
        with open(path, encoding="utf-8") as file:
            document = yaml.safe_load(file)
    except OSError as exc:
        raise DocumentError(f"cannot read {path!r}: {exc.strerror or exc}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise DocumentError(f"{path!r} is not YAML or JSON: {exc}") from None
    if not isinstance(document, dict):
        raise DocumentError(f"{path!r} is not an OpenAPI document (expected a mapping)")
    return document


def resolve_path(path: str, config_source: str | None) -> str:
    """``openapi_file`` relative to the config file's directory (else the working one)."""
    if os.path.isabs(path) or not config_source or config_source.startswith("<"):
        return path
    return os.path.join(os.path.dirname(os.path.abspath(config_source)), path)


def version(document: dict) -> str:
    """``3.0`` or ``3.1``; DocumentError for anything else."""
    declared = str(document.get("openapi", ""))
    for known in META:
        if declared == known or declared.startswith(known + "."):
            return known
    raise DocumentError(f"'openapi: {declared}' is not a version validation knows (3.0.x or 3.1.x)"
                        if declared else "no 'openapi' version field: not an OpenAPI 3 document")


def pointer(parts: Any) -> str:
    """A JSON pointer (RFC 6901) from path parts."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def resolve(document: dict, value: Any) -> Any:
    """``value``, or what its local ``$ref`` points to (parameters, bodies, answers)."""
    seen = 0
    while isinstance(value, dict) and isinstance(value.get("$ref"), str) and seen < 32:
        ref = value["$ref"]
        if not ref.startswith("#/"):
            raise DocumentError(f"$ref {ref!r}: only references within the document are "
                                "supported")
        value = document
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(value, (dict, list)):
                raise DocumentError(f"$ref {ref!r} points to nothing")
            try:
                value = value[int(part)] if isinstance(value, list) else value[part]
            except (KeyError, IndexError, ValueError):
                raise DocumentError(f"$ref {ref!r} points to nothing") from None
        seen += 1
    return value


def schema_locations(document: dict) -> Iterator[tuple[tuple, Any]]:
    """(path parts, schema) of every schema the document holds where validation looks."""
    components = document.get("components") or {}
    for name, schema in (components.get("schemas") or {}).items():
        yield ("components", "schemas", name), schema
    for kind in ("parameters", "headers"):
        for name, item in (components.get(kind) or {}).items():
            if isinstance(item, dict) and "schema" in item:
                yield ("components", kind, name, "schema"), item["schema"]
    for kind in ("requestBodies", "responses"):
        for name, item in (components.get(kind) or {}).items():
            yield from _content_schemas(("components", kind, name), item)
    for path, item in (document.get("paths") or {}).items():
        if not isinstance(item, dict):
            continue
        yield from _parameter_schemas(("paths", path), item)
        for method in HTTP_METHODS:
            operation = item.get(method)
            if not isinstance(operation, dict):
                continue
            where = ("paths", path, method)
            yield from _parameter_schemas(where, operation)
            if "requestBody" in operation:
                yield from _content_schemas(where + ("requestBody",), operation["requestBody"])
            for status, answer in (operation.get("responses") or {}).items():
                yield from _content_schemas(where + ("responses", str(status)), answer)


def _parameter_schemas(where: tuple, item: dict) -> Iterator[tuple[tuple, Any]]:
    for index, parameter in enumerate(item.get("parameters") or []):
        if isinstance(parameter, dict) and "schema" in parameter:
            yield where + ("parameters", index, "schema"), parameter["schema"]


def _content_schemas(where: tuple, item: Any) -> Iterator[tuple[tuple, Any]]:
    if not isinstance(item, dict):
        return
    for media, content in (item.get("content") or {}).items():
        if isinstance(content, dict) and "schema" in content:
            yield where + ("content", media, "schema"), content["schema"]


def schema_problems(document: dict) -> list[str]:
    """``<JSON pointer>: <what is wrong>`` for each invalid schema (empty: all valid)."""
    try:
        meta = META[version(document)]
    except DocumentError as exc:
        return [f"/openapi: {exc}"]
    problems = []
    for parts, schema in schema_locations(document):
        if not isinstance(schema, (dict, bool)):
            problems.append(f"{pointer(parts)}: a schema must be a mapping, got {schema!r}")
            continue
        found = _deepest_problem(schema, meta)
        if found is not None:
            inner, message = found
            problems.append(f"{pointer(parts + inner)}: {message}")
    return problems


def _deepest_problem(schema: Any, meta: str) -> tuple[tuple, str] | None:
    """Where in ``schema`` it breaks its meta-schema: the innermost invalid subschema,
    then the keyword the meta-schema names."""
    if not isinstance(schema, dict):
        return None
    try:
        jsonschema_rs.meta.validate({**schema, "$schema": meta})
        return None
    except jsonschema_rs.ValidationError as exc:
        error = exc
    for key, child in _children(schema):
        found = _deepest_problem(child, meta)
        if found is not None:
            return key + found[0], found[1]
    return tuple(error.instance_path), error.message


def _children(schema: dict) -> Iterator[tuple[tuple, Any]]:
    for keyword in _ONE:
        if isinstance(schema.get(keyword), dict):
            yield (keyword,), schema[keyword]
    for keyword in (*_MANY, "items"):
        if isinstance(schema.get(keyword), list):
            for index, child in enumerate(schema[keyword]):
                yield (keyword, index), child
    for keyword in _NAMED:
        if isinstance(schema.get(keyword), dict):
            for name, child in schema[keyword].items():
                yield (keyword, name), child


def json_schema(schema: Any, openapi: str) -> Any:
    """A document's schema as the JSON Schema its validator checks (3.0: ``nullable``)."""
    if openapi != "3.0" or not isinstance(schema, (dict, list)):
        return schema
    if isinstance(schema, list):
        return [json_schema(item, openapi) for item in schema]
    converted = {}
    for key, value in schema.items():
        if key in _ONE or key in _MANY or key == "items":
            converted[key] = json_schema(value, openapi)
        elif key in _NAMED and isinstance(value, dict):
            converted[key] = {name: json_schema(child, openapi) for name, child in value.items()}
        else:
            converted[key] = value
    if converted.get("nullable") is True and "$ref" not in converted:
        kind = converted.get("type")
        if isinstance(kind, str):
            converted["type"] = [kind, "null"]
        if isinstance(converted.get("enum"), list) and None not in converted["enum"]:
            converted["enum"] = [*converted["enum"], None]
    return converted


def components_for(document: dict, openapi: str) -> dict:
    """The document's components with their schemas converted: what ``$ref`` reaches."""
    components = dict(document.get("components") or {})
    components["schemas"] = {name: json_schema(schema, openapi)
                             for name, schema in (components.get("schemas") or {}).items()}
    return components


def validator(schema: Any, components: dict, openapi: str):
    """A compiled validator for one schema of a document, ``#/components/...`` resolved
    in ``components`` (from :func:`components_for`)."""
    root: Any = json_schema(schema, openapi)
    if not isinstance(root, dict):
        root = {"allOf": [root]}
    root = {**root, "components": components}  # "#/components/..." resolves here
    kind = jsonschema_rs.Draft4Validator if openapi == "3.0" else \
        jsonschema_rs.Draft202012Validator
    return kind(root, validate_formats=True)
