"""``X-Request-ID``: one id per request, kept from the client when well-formed.

The id is set on ``g`` before anything else runs, sent upstream, written in
the access log and error bodies, and returned to the client.
"""

from __future__ import annotations

import re
import time
import os

from flask import Flask, Response, g, request

HEADER = "X-Request-ID"
_WELL_FORMED = re.compile(r"[A-Za-z0-9._-]{1,128}")


def incoming_or_new(value: str | None) -> str:
    """The client's id if it is at most 128 of ``[A-Za-z0-9._-]``, else a fresh one."""
    if value and _WELL_FORMED.fullmatch(value):
        return value
    return os.urandom(16).hex()


def init_app(app: Flask) -> None:
    @app.before_request
    def assign_request_id() -> None:
        ctx = g._get_current_object()
        ctx.started = time.perf_counter()
        ctx.request_id = incoming_or_new(request.environ.get("HTTP_X_REQUEST_ID"))

    @app.after_request
    def return_request_id(response: Response) -> Response:
        response.headers[HEADER] = g.get("request_id") or incoming_or_new(None)
        return response
