"""The Admin API's Flask app: JSON in and out, the gateway's error shape.

``GET/POST /consumers``, ``GET/PATCH/DELETE /consumers/{name}``,
``GET/POST /consumers/{name}/keys``, ``DELETE /keys/{id}`` (revoke),
``POST /keys/{id}/rotate``, ``GET /audit?since=``, and ``/openapi.json``.
Every request but the document's needs ``Authorization: Bearer <token>``, a
token of ``admin.tokens`` (held as hashes; its name is the audit log's actor).
A refusal is logged with the client's address, never the token. A body that is
not JSON, or not what the endpoint takes, is 422 ``invalid_body`` with the
JSON pointer of the first problem (``""`` for the whole body).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from flask import Flask, Response, jsonify, request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.engine import Engine

from .. import state
from ..config import GatewayConfig, hash_key
from ..db import Records, Refused
from ..db.engine import DatabaseError
from ..db.records import ConsumerChanges, ConsumerFields, invalid
from ..errors import GatewayError, error_response, register_error_handlers
from ..keyring import IssuedKeys
from .document import admin_document

log = logging.getLogger("gateway.admin")

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="gateway-admin"'}


class KeyFields(BaseModel):
    """``POST /consumers/{name}/keys``."""

    model_config = ConfigDict(extra="forbid")

    label: str | None = Field(None, max_length=200)
    expires_at: AwareDatetime | None = None


class RotateFields(BaseModel):
    """``POST /keys/{id}/rotate``."""

    model_config = ConfigDict(extra="forbid")

    grace_seconds: int = Field(0, ge=0)


def create_admin_app(config: GatewayConfig, engine: Engine, routes: list[str]) -> Flask:
    """The Admin API on ``engine``; ``routes`` are the names a consumer's ``services`` may hold."""
    assert config.admin is not None
    app = Flask("gateway.admin", static_folder=None)
    state.init_app(app, set())
    register_error_handlers(app)
    tokens = config.admin.token_names()
    issued = IssuedKeys(config.keys.prefix)
    read_only = set(config.consumers)

    def records() -> Records:
        return Records(engine, actor=request.environ["gateway.admin_actor"],
                       read_only=read_only, routes=routes, issued=issued,
                       plans=set(config.plans))

    @app.before_request
    def authenticate() -> None:
        if request.path == "/openapi.json":
            return
        scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
        name = tokens.get(hash_key(token.strip())) if scheme.lower() == "bearer" else None
        if name is None:
            log.warning("admin API: refused %s %s from %s (%s bearer token)", request.method,
                        request.path, request.remote_addr,
                        "a wrong" if token.strip() else "no")
            raise GatewayError(401, "unauthorized", "the Admin API needs "
                               "Authorization: Bearer <token>, a token of admin.tokens",
                               CHALLENGE)
        request.environ["gateway.admin_actor"] = name

    @app.errorhandler(Refused)
    def refused(error: Refused) -> Response:
        extra = {"pointer": error.pointer or ""} if error.status == 422 else None
        return error_response(error.status, error.code, error.message, extra=extra)

    @app.errorhandler(DatabaseError[0])
    def unreachable(error: Exception) -> Response:
        log.warning("admin API: the database did not answer: %s", error)
        return error_response(503, "database_unavailable", "the database did not answer; "
                              "try again shortly", {"Retry-After": "1"})

    @app.get("/openapi.json")
    def document():
        return jsonify(admin_document())

    @app.get("/consumers")
    def list_consumers():
        return jsonify(records().list_consumers())

    @app.post("/consumers")
    def add_consumer():
        fields = body(ConsumerFields)
        return jsonify(records().add_consumer(fields)), 201

    @app.get("/consumers/<name>")
    def show_consumer(name: str):
        return jsonify(records().get_consumer(name))

    @app.patch("/consumers/<name>")
    def update_consumer(name: str):
        return jsonify(records().update_consumer(name, body(ConsumerChanges)))

    @app.delete("/consumers/<name>")
    def remove_consumer(name: str):
        records().remove_consumer(name)
        return "", 204

    @app.get("/consumers/<name>/keys")
    def list_keys(name: str):
        return jsonify(records().list_keys(name))

    @app.post("/consumers/<name>/keys")
    def issue_key(name: str):
        fields = body(KeyFields, empty_ok=True)
        return jsonify(records().issue_key(name, fields.label, fields.expires_at)), 201

    @app.delete("/keys/<key_id>")
    def revoke_key(key_id: str):
        records().revoke_key(key_id)
        return "", 204

    @app.post("/keys/<key_id>/rotate")
    def rotate_key(key_id: str):
        from datetime import timedelta

        fields = body(RotateFields, empty_ok=True)
        return jsonify(records().rotate_key(key_id, timedelta(seconds=fields.grace_seconds))), 201

    @app.get("/audit")
    def audit():
        since = request.args.get("since")
        moment = None
        if since:
            try:
                moment = datetime.fromisoformat(since)
            except ValueError:
                raise GatewayError(400, "bad_request", f"since: {since!r} is not an ISO-8601 "
                                   "time (e.g. 2026-12-01T00:00:00Z)") from None
            if moment.tzinfo is None:
                raise GatewayError(400, "bad_request", f"since: {since!r} has no time zone "
                                   "(add Z for UTC)")
        return jsonify(records().audit_since(moment))

    @app.get("/usage")
    def usage():
        from ..db.usage import report, usage_query

        query = usage_query(request.args, datetime.now(UTC))
        return jsonify(report(engine, query))

    return app


def body(model: type[BaseModel], empty_ok: bool = False):
    """The request's JSON object as ``model``, or 422 with the pointer of the first problem."""
    raw = request.get_data()
    if empty_ok and not raw.strip():
        return model()
    parsed = request.get_json(silent=True, force=True)
    if not isinstance(parsed, dict):
        raise GatewayError(422, "invalid_body", "the body must be a JSON object",
                           extra={"pointer": ""})
    try:
        return model.model_validate(parsed)
    except ValidationError as error:
        problem = invalid(error)
        raise GatewayError(422, "invalid_body", problem.message,
                           extra={"pointer": problem.pointer}) from None
