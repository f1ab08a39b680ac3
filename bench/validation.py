"""The validation rows of ``make bench``: the full chain with a 1 KB JSON POST,
without and with ``validate`` (requests enforced against an OpenAPI 3.0
document). Target: with validation ≥ 0.8 × without.
"""

from __future__ import annotations

import json
from pathlib import Path

PLAIN = "gateway, full chain, 1 KB JSON POST"
VALIDATED = "gateway, full chain + validation, 1 KB JSON POST"
PATH = "/users/orders"

#: an order of 1 KB, valid for the document below
BODY = json.dumps({"sku": "bench-sku", "note": None, "customer": {"id": 7, "email": "a@b.example"},
                   "items": [{"sku": f"item-{n:03d}", "qty": n % 9 + 1, "price": 9.5}
                             for n in range(21)]})

DOCUMENT = {
    "openapi": "3.0.3", "info": {"title": "bench", "version": "1"},
    "paths": {PATH: {"post": {
        "operationId": "create_order",
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/Order"}}}},
        "responses": {"200": {"description": "ok"}}}}},
    "components": {"schemas": {
        "Order": {"type": "object", "additionalProperties": False,
                  "required": ["sku", "items"], "properties": {
                      "sku": {"type": "string", "minLength": 1},
                      "note": {"type": "string", "nullable": True},
                      "customer": {"type": "object", "properties": {
                          "id": {"type": "integer", "minimum": 1},
                          "email": {"type": "string", "format": "email"}}},
                      "items": {"type": "array", "minItems": 1,
                                "items": {"$ref": "#/components/schemas/Line"}}}},
        "Line": {"type": "object", "required": ["sku", "qty"], "properties": {
            "sku": {"type": "string"}, "qty": {"type": "integer", "minimum": 1},
            "price": {"type": "number", "minimum": 0}}}}},
}


def files(tmp: Path, full_config: Path) -> tuple[Path, Path]:
    """The wrk script that POSTs the body, and the full chain's config with ``validate``."""
    script = tmp / "post-1k.lua"
    script.write_text('wrk.method = "POST"\n'
                      'wrk.headers["Content-Type"] = "application/json"\n'
                      f"wrk.body = {json.dumps(BODY)}\n")
    document = tmp / "bench-openapi.json"
    document.write_text(json.dumps(DOCUMENT))
    validated = tmp / "validated.yaml"
    validated.write_text(full_config.read_text() +
                         f"    openapi_file: {document}\n    validate: true\n")
    assert 900 <= len(BODY) <= 1100, len(BODY)
    return script, validated
