"""Errors the gateway answers itself, always as JSON.

Every error body is ``{"error": "<short_code>", "message": "<sentence>",
"request_id": "<id>"}``. Code raises :class:`GatewayError` (or lets werkzeug
raise its own HTTP exceptions for routing); the handlers registered by
:func:`register_error_handlers` turn both into that shape. Anything else is a
bug: it is logged with its traceback and answered with a 500 that carries the
request id and nothing internal.
"""

from __future__ import annotations

import json

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from .state import current_or_none

#: Short codes for the werkzeug HTTP errors the gateway can raise.
HTTP_ERROR_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    411: "length_required",
    413: "body_too_large",
    414: "uri_too_long",
    431: "headers_too_large",
    500: "internal_error",
}


class GatewayError(Exception):
    """An error the gateway answers on its own, with a short code and a sentence."""

    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None, extra: dict | None = None):
        """:param extra: more fields for the JSON body (an aggregate's ``_errors``)."""
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.extra = extra or {}


def error_response(status: int, code: str, message: str,
                   headers: dict[str, str] | None = None, extra: dict | None = None) -> Response:
    """The JSON body every gateway-made error has."""
    body = json.dumps({"error": code, "message": message, "request_id": _request_id(),
                       **(extra or {})})
    response = Response(body, status=status, mimetype="application/json")
    if headers:
        response.headers.update(headers)
    return response


def _request_id() -> str:
    state = current_or_none()
    return state.request_id if state else ""


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(GatewayError)
    def gateway_error(exc: GatewayError) -> Response:
        return error_response(exc.status, exc.code, exc.message, exc.headers, exc.extra)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        code = HTTP_ERROR_CODES.get(status, f"http_{status}")
        message = exc.description or exc.name
        if status == 404:
            message = f"no route for {request.path!r}: check the path and the gateway's route table"
        elif status == 405:
            allowed = ", ".join(exc.valid_methods or [])  # type: ignore[attr-defined]
            message = f"this route accepts {allowed}"
        headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
        return error_response(status, code, message, headers)

    @app.errorhandler(Exception)
    def unhandled(exc: Exception) -> Response:
        app.logger.exception("unhandled error in request %s", _request_id())
        return error_response(500, "internal_error",
                              "the gateway failed to handle this request; quote the request_id "
                              "when reporting it")
