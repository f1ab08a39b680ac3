"""The Admin API's own OpenAPI document (``/openapi.json`` on the admin listener)."""

from __future__ import annotations

from typing import Any

from ..db.records import ConsumerChanges, ConsumerFields


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _answer(description: str, schema: dict | None = None) -> dict[str, Any]:
    if schema is None:
        return {"description": description}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _body(schema: dict, required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


_TIME = {"type": ["string", "null"], "format": "date-time"}
ERRORS = {"401": _answer("no or a wrong bearer token", _ref("Error")),
          "404": _answer("no such consumer or key", _ref("Error")),
          "409": _answer("already exists, or written in gateway.yaml (read_only)",
                         _ref("Error")),
          "422": _answer("a body that is not what the endpoint takes", _ref("Error"))}


def admin_document() -> dict[str, Any]:
    consumer = {"type": "object", "required": ["name", "plan", "rate_limit", "quota",
                                                "services", "metadata", "created_at"],
                "properties": {"name": {"type": "string"},
                               "plan": {"type": ["string", "null"],
                                        "description": "a plan of gateway.yaml"},
                               "rate_limit": {"type": ["string", "null"]},
                               "quota": {"type": ["string", "null"],
                                         "description": "N/month or N/day (UTC)"},
                               "services": {"type": ["array", "null"],
                                            "items": {"type": "string"}},
                               "metadata": {"type": "object",
                                            "additionalProperties": {"type": "string"}},
                               "created_at": {"type": "string", "format": "date-time"}}}
    key = {"type": "object", "required": ["id", "consumer", "label", "hint", "created_at",
                                           "expires_at", "last_used_at", "revoked_at"],
           "properties": {"id": {"type": "string"}, "consumer": {"type": "string"},
                          "label": {"type": ["string", "null"]}, "hint": {"type": "string"},
                          "created_at": {"type": "string", "format": "date-time"},
                          "expires_at": _TIME, "last_used_at": _TIME, "revoked_at": _TIME,
                          "key": {"type": "string",
                                  "description": "only in the answer that creates it"}}}
    name = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]
    key_id = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]
    return {
        "openapi": "3.1.0",
        "info": {"title": "Gateway Admin API", "version": "1",
                 "description": "Consumers, keys and the audit log of the gateway's database. "
                                "Every operation needs Authorization: Bearer <admin token>."},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Consumer": consumer, "Key": key, "Usage": _usage_row(),
                "NewConsumer": ConsumerFields.model_json_schema(),
                "ConsumerChanges": ConsumerChanges.model_json_schema(),
                "Audit": {"type": "object", "properties": {
                    "at": {"type": "string", "format": "date-time"},
                    "actor": {"type": "string"}, "action": {"type": "string"},
                    "consumer": {"type": ["string", "null"]},
                    "key_id": {"type": ["string", "null"]}}},
                "Error": {"type": "object", "required": ["error", "message", "request_id"],
                          "properties": {"error": {"type": "string"},
                                         "message": {"type": "string"},
                                         "request_id": {"type": "string"},
                                         "pointer": {"type": "string"}}}}},
        "security": [{"bearer": []}],
        "paths": {
            "/consumers": {
                "get": {"summary": "Every consumer of the database",
                        "responses": {"200": _answer("the consumers", {
                            "type": "array", "items": _ref("Consumer")}), **ERRORS}},
                "post": {"summary": "Add a consumer", "requestBody": _body(_ref("NewConsumer")),
                         "responses": {"201": _answer("added", _ref("Consumer")), **ERRORS}}},
            "/consumers/{name}": {
                "parameters": name,
                "get": {"summary": "One consumer",
                        "responses": {"200": _answer("the consumer", _ref("Consumer")),
                                      **ERRORS}},
                "patch": {"summary": "Change a consumer's plan, rate_limit, quota, services or metadata",
                          "requestBody": _body(_ref("ConsumerChanges")),
                          "responses": {"200": _answer("changed", _ref("Consumer")), **ERRORS}},
                "delete": {"summary": "Remove a consumer (its keys stop working)",
                           "responses": {"204": _answer("removed"), **ERRORS}}},
            "/consumers/{name}/keys": {
                "parameters": name,
                "get": {"summary": "A consumer's keys (never the keys themselves)",
                        "responses": {"200": _answer("the keys", {
                            "type": "array", "items": _ref("Key")}), **ERRORS}},
                "post": {"summary": "Issue a key (shown once, in this answer)",
                         "requestBody": _body({"type": "object", "properties": {
                             "label": {"type": "string"},
                             "expires_at": {"type": "string", "format": "date-time"}}},
                             required=False),
                         "responses": {"201": _answer("the new key, with key",
                                                      _ref("Key")), **ERRORS}}},
            "/keys/{id}": {
                "parameters": key_id,
                "delete": {"summary": "Revoke a key",
                           "responses": {"204": _answer("revoked"), **ERRORS}}},
            "/keys/{id}/rotate": {
                "parameters": key_id,
                "post": {"summary": "A new key for the same consumer; the old one works "
                                    "for grace_seconds more",
                         "requestBody": _body({"type": "object", "properties": {
                             "grace_seconds": {"type": "integer", "minimum": 0}}},
                             required=False),
                         "responses": {"201": _answer("the new key, with key", _ref("Key")),
                                       **ERRORS}}},
            "/audit": {
                "get": {"summary": "Every change since a time (inclusive)",
                        "parameters": [{"name": "since", "in": "query", "schema": {
                            "type": "string", "format": "date-time"}}],
                        "responses": {"200": _answer("the audit records", {
                            "type": "array", "items": _ref("Audit")}), **ERRORS}}},
            "/usage": {
                "get": {"summary": "Usage per consumer, service and period, as `gateway "
                                   "usage --format json` prints it",
                        "parameters": [
                            _query("consumer", {"type": "string"}),
                            _query("service", {"type": "string"}),
                            _query("from", {"type": "string"}, "a UTC date or ISO-8601 time, "
                                   "inclusive (default: the start of this month)"),
                            _query("to", {"type": "string"}, "exclusive"),
                            _query("by", {"enum": ["hour", "day", "month"],
                                          "default": "day"})],
                        "responses": {"200": _answer("one row per consumer, service and "
                                                     "period", {"type": "array",
                                                                "items": _ref("Usage")}),
                                      "400": _answer("a parameter that is not what it takes",
                                                     _ref("Error")), **ERRORS}}},
        },
    }


def _query(name: str, schema: dict, description: str = "") -> dict:
    return {"name": name, "in": "query", "schema": schema, "description": description}


def _usage_row() -> dict[str, Any]:
    counts = ("requests", "status_2xx", "status_3xx", "status_4xx", "status_5xx",
              "status_429", "bytes_in", "bytes_out")
    return {"type": "object",
            "required": ["consumer", "service", "period_start", *counts, "latency_p50_ms",
                         "latency_p95_ms"],
            "properties": {"consumer": {"type": "string"}, "service": {"type": "string"},
                           "period_start": {"type": "string", "format": "date-time"},
                           **{name: {"type": "integer"} for name in counts},
                           "latency_p50_ms": {"type": ["integer", "null"]},
                           "latency_p95_ms": {"type": ["integer", "null"]}}}
