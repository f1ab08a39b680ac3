"""The configuration reference: every key of ``gateway.yaml``, from its JSON Schema.

Walks ``GatewayConfig.model_json_schema()`` (what ``gateway schema`` prints)
in the file's own nesting and writes, for each key, its type, default,
allowed values, description and a YAML example. A key without a description
is :class:`~docsgen.Undocumented`: the model is the only place the words live.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

import yaml

from . import Undocumented

#: What a ``<name>`` stands for under each mapping, in the examples.
EXAMPLE_NAMES = {"services": "users", "consumers": "acme", "issuers": "auth0",
                 "calls": "user", "add": "X-Source", "rename": "X-Old",
                 "claims_to_headers": "X-User-Id", "scopes": "GET"}

#: Example values for string keys whose description gives none, by key name.
EXAMPLE_VALUES = {
    "allow_ips": ["10.0.0.0/8"], "deny_ips": ["10.0.13.0/24"], "issuers": ["auth0"],
    "scopes": ["orders:read"], "name": "dashboard", "shape": "{user: user, orders: orders}",
    "blueprint": "blueprints.shop:bp", "keys": ["sha256:<the output of gateway hash-key>"],
    "rate_limit": "100/minute", "services": ["users", "orders"],
    "audiences": ["api://gateway"], "jwks_uri": "https://idp.example.com/.well-known/jwks.json",
    "secret_env": "GATEWAY_HS256_SECRET", "openapi_file": "specs/orders.yaml",
    "prefix": "/api/users", "select": "items", "service": "orders",
    "expose_headers": ["X-Total-Count"], "headers": ["Content-Type", "X-API-Key"],
    "methods": ["GET", "POST"], "origins": ["https://app.example.com"],
    "client_id": "gateway", "client_secret_env": "GATEWAY_INTROSPECTION_SECRET",
    "client_secret": "s3cret", "endpoint": "https://idp.example.com/introspect",
    "upstream": "http://127.0.0.1:9101", "ca_file": "/etc/gateway/upstream-ca.pem",
    "cert_file": "/etc/gateway/client.pem", "key_file": "/etc/gateway/client.key",
    "server_name": "orders.internal", "credentials_query": "access_token",
    "body": "{order_id: id, items: products}", "remove": ["X-Debug"], "default": [],
    "blueprints": ["blueprints.shop:bp"],
}


@dataclass
class Key:
    path: tuple[str, ...]      #: e.g. ("services", "<name>", "timeout", "read")
    kind: str                  #: "string", "mapping of name to section", …
    description: str
    default: object
    has_default: bool
    required: bool
    allowed: list | None
    example: object


def schema_keys(schema: dict) -> list[Key]:
    """Every key in the schema, parents before their children."""
    return list(_walk(schema, schema.get("$defs", {}), (), frozenset()))


def _walk(node: dict, defs: dict, path: tuple[str, ...], seen: frozenset) -> Iterator[Key]:
    required = set(node.get("required", []))
    for name, prop in node.get("properties", {}).items():
        key_path = path + (name,)
        description = prop.get("description") or _section_description(prop, defs)
        if not description:
            raise Undocumented(f"{'.'.join(key_path)} has no description: add "
                               f"Field(description=...) to its model")
        yield Key(key_path, _kind(prop, defs), description, prop.get("default"),
                  "default" in prop, name in required, _allowed(prop, defs),
                  _example(key_path, prop, defs))
        for child, child_path in _sections(prop, defs, key_path):
            ref = child.get("title", "")
            if ref in seen:
                continue
            yield from _walk(child, defs, child_path, seen | {ref})


def _alternatives(node: dict, defs: dict) -> list[dict]:
    """The node's alternatives with references resolved (``anyOf`` flattened)."""
    if "$ref" in node:
        return _alternatives(defs[node["$ref"].rsplit("/", 1)[1]], defs)
    if "anyOf" in node or "oneOf" in node:
        return [a for alt in node.get("anyOf", node.get("oneOf", []))
                for a in _alternatives(alt, defs)]
    return [node]


def _sections(node: dict, defs: dict, path: tuple[str, ...]) -> Iterator[tuple[dict, tuple]]:
    """The object schemas nested under a key, with the path their keys have."""
    for alt in _alternatives(node, defs):
        if alt.get("properties"):
            yield alt, path
        extra = alt.get("additionalProperties")
        if isinstance(extra, dict):
            for inner in _alternatives(extra, defs):
                if inner.get("properties"):
                    yield inner, path + ("<name>",)
        if isinstance(alt.get("items"), dict):
            for inner in _alternatives(alt["items"], defs):
                if inner.get("properties"):
                    yield inner, path[:-1] + (path[-1] + "[]",)


def _section_description(node: dict, defs: dict) -> str:
    for alt in _alternatives(node, defs):
        if alt.get("properties") and alt.get("description"):
            return alt["description"].replace("``", "`")
    return ""


def _kind(node: dict, defs: dict) -> str:
    kinds = []
    for alt in _alternatives(node, defs):
        kind = _one_kind(alt, defs)
        if kind and kind not in kinds:
            kinds.append(kind)
    return " or ".join(kinds) or "any JSON value"


def _one_kind(alt: dict, defs: dict) -> str:
    if alt.get("type") == "null":
        return ""
    if "enum" in alt:
        return "one of the allowed values"
    if alt.get("properties"):
        return "section"
    kind = alt.get("type")
    if kind == "array":
        items = _kind(alt.get("items", {}), defs)
        return "list of the allowed values" if "allowed" in items else f"list of {items}"
    if kind == "object":
        extra = alt.get("additionalProperties")
        inner = _kind(extra, defs) if isinstance(extra, dict) else "any value"
        return f"mapping of name to {inner}"
    if kind == "string" and alt.get("format") == "uri":
        return "URL"
    return {"string": "string", "integer": "integer", "number": "number",
            "boolean": "boolean"}.get(kind or "", "")


def _allowed(node: dict, defs: dict) -> list | None:
    for alt in _alternatives(node, defs):
        if "enum" in alt:
            return alt["enum"]
        if "const" in alt:
            return [alt["const"]]
    return None


def _example(path: tuple[str, ...], node: dict, defs: dict) -> object:
    """A YAML document that sets this key, nested as the file is."""
    value = _example_value(node, defs, path[-1].removesuffix("[]"))
    for name in reversed(path):
        if name == "<name>":
            continue
        if name.endswith("[]"):
            value = {name[:-2]: [value]}
        else:
            value = {name: value}
        if path[path.index(name) + 1:path.index(name) + 2] == ("<name>",):
            value = {name: {EXAMPLE_NAMES.get(name, "name"): value[name]}}
    return value


def _example_value(node: dict, defs: dict, name: str = "") -> object:
    if node.get("examples"):
        return node["examples"][0]
    if name in EXAMPLE_VALUES and node.get("default") in (None, [], {}, ""):
        return EXAMPLE_VALUES[name]
    default = node.get("default")
    if default not in (None, [], {}, ""):
        return default
    allowed = _allowed(node, defs)
    if allowed:
        return allowed[0]
    for alt in _alternatives(node, defs):
        kind = alt.get("type")
        if alt.get("properties"):
            return {}
        if kind == "boolean":
            return True
        if kind == "integer":
            return max(alt.get("minimum", 1), 1)
        if kind == "number":
            return max(alt.get("minimum", 1.0), 1.0)
        if kind == "string":
            return "http://127.0.0.1:9001" if alt.get("format") == "uri" else \
                _given_example(node.get("description", ""))
        if kind == "array":
            return [_example_value(alt.get("items", {}), defs)]
        if kind == "object":
            return {}
    return "…"


def _given_example(description: str) -> str:
    """The value a description gives after "e.g.", else a placeholder."""
    match = re.search(r"e\.g\. '?([^\s',;]+)", description)
    return match.group(1).rstrip(".)") if match else "<string>"


def render(schema: dict) -> str:
    """The reference page, in Markdown."""
    lines = [
        "# Configuration reference",
        "",
        "Every key of `gateway.yaml`, generated from the config model's JSON Schema "
        "(`gateway schema` prints it; editors use it through the "
        "`# yaml-language-server: $schema=./gateway.schema.json` line). `<name>` stands for "
        "a name you choose (a service's, a consumer's); `[]` for an item of a list. "
        "Keys are nested as they are in the file; a key not listed here is an error, "
        "reported with its path and the closest known key.",
        "",
    ]
    for key in schema_keys(schema):
        dotted = ".".join(key.path)
        level = min(2 + len([p for p in key.path if p != "<name>"]) - 1, 6)
        lines += [f"{'#' * level} `{dotted}`", ""]
        facts = [f"**Type**: {key.kind}"]
        if key.required:
            facts.append("**required**")
        elif key.has_default and key.default not in (None, [], {}, ""):
            facts.append(f"**Default**: `{json.dumps(key.default)}`")
        elif key.has_default:
            facts.append("**Default**: not set")
        if key.allowed:
            facts.append("**Allowed**: " + ", ".join(f"`{v}`" for v in key.allowed))
        lines += [" · ".join(facts), "", key.description[:1].upper() + key.description[1:]
                  + ("" if key.description.endswith(".") else "."), ""]
        lines += ["```yaml", yaml.safe_dump(key.example, sort_keys=False,
                                            allow_unicode=True).rstrip(), "```", ""]
    return "\n".join(lines)
