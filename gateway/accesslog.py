"""One JSON access-log line per request, on stdout.

The line is written when the response body has been sent (or the client went
away), so ``duration_ms`` and ``bytes_sent`` cover the whole exchange of a
streamed answer. Header values are never logged: no API key, ``Authorization``
or cookie can end up in the log. The query string is left out for the same
reason (keys and tokens travel there too).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import datetime, timezone

from flask import Flask, Response, g, request

from .transport import UpstreamBody

logger = logging.getLogger("gateway.access")


def _configure_logger() -> None:
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def init_app(app: Flask) -> None:
    _configure_logger()

    @app.after_request
    def schedule_access_log(response: Response) -> Response:
        entry = {
            "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "request_id": g.get("request_id", ""),
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "duration_ms": 0.0,
            "service": g.get("service"),
            "upstream": g.get("upstream"),
            "upstream_ms": _round(g.get("upstream_ms")),
            "client_ip": request.remote_addr,
            "bytes_sent": 0,
        }
        started = g.get("started") or time.perf_counter()
        body = response.response
        if isinstance(body, UpstreamBody):
            body.on_close = lambda b: _write(entry, started, b.bytes_sent, b.error)
        else:
            response.call_on_close(
                lambda: _write(entry, started, response.content_length or 0, None))
        return response


def _write(entry: dict, started: float, bytes_sent: int, error) -> None:
    entry["duration_ms"] = _round((time.perf_counter() - started) * 1000.0)
    entry["bytes_sent"] = bytes_sent
    if error is not None:
        entry["error"] = error.kind
    logger.info(json.dumps(entry, separators=(",", ":")))


def _round(ms: float | None) -> float | None:
    return None if ms is None else round(ms, 2)
