"""Merging the services' OpenAPI documents (no fetching: the documents are given)."""

from __future__ import annotations

from gateway.config import parse_config
from gateway.openapi.document import build_document


def doc(schema_required: list[str]) -> dict:
    return {"openapi": "3.1.0", "paths": {"/items/{id}": {"get": {
        "operationId": "get_item", "responses": {"200": {"description": "ok", "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Item"}}}}}}}},
        "components": {"schemas": {"Item": {"type": "object", "required": schema_required}}}}


CONFIG = parse_config({
    "consumers": {"web": {"keys": ["web-key"]}},
    "services": {
        "users": {"upstream": "http://x", "auth": "api_key", "methods": ["GET"]},
        "orders": {"upstream": "http://y", "prefix": "/api/orders", "strip_prefix": True,
                   "rate_limit": "5/second"},
        "bare": "http://z"}})


def test_paths_move_under_their_prefixes_and_clashing_components_are_renamed():
    merged = build_document(CONFIG, {"users": doc(["id"]), "orders": doc(["sku"]), "bare": None})
    paths, schemas = merged["paths"], merged["components"]["schemas"]
    assert "/api/orders/items/{id}" in paths
    assert schemas["users.Item"]["required"] == ["id"]
    assert schemas["orders.Item"]["required"] == ["sku"]
    answer = paths["/api/orders/items/{id}"]["get"]["responses"]["200"]
    assert answer["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/orders.Item"}
    assert "/bare/{path}" in paths                      # no document: a catch-all


def test_the_gateways_own_answers_are_listed_only_where_the_route_can_give_them():
    merged = build_document(CONFIG, {"users": None, "orders": None, "bare": None})
    answers = {path: set(item["get"]["responses"]) for path, item in merged["paths"].items()
               if "get" in item and path not in ("/healthz", "/readyz")}
    assert {"401", "403"} <= answers["/users/{path}"] and "429" not in answers["/users/{path}"]
    assert "429" in answers["/api/orders/{path}"] and "401" not in answers["/api/orders/{path}"]
    assert not {"401", "403", "429"} & answers["/bare/{path}"]
    assert merged["paths"]["/users/{path}"]["get"]["security"] == [{"ApiKey": []}]
