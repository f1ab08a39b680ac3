"""One JSON access-log line per request, on stdout.

The line is written when the response body has been sent (or the client went
away), so ``duration_ms`` and ``bytes_sent`` cover the whole exchange of a
streamed answer. Header values are never logged: no API key, ``Authorization``
or cookie can end up in the log. The query string is left out for the same
reason (keys and tokens travel there too). ``service`` is the route the
request belongs to, whoever answered it (the upstream, a policy, the cache).

Each line goes out in one ``write(2)`` on stdout: lines from many threads and
workers never interleave (each is far below ``PIPE_BUF``), nothing waits in a
buffer, and it costs a tenth of a pass through :mod:`logging` (findCaller,
LogRecord, handler locks), which matters at thousands of requests a second.
Point :data:`sink` elsewhere to send the lines somewhere else.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime

from flask import Flask, Response, request

from .. import state as request_state
from ..transport import when_sent


def write_stdout(line: str) -> None:
    os.write(1, line.encode() + b"\n")


#: Where finished lines go: a callable taking one line (without newline).
sink = write_stdout


def init_app(app: Flask) -> None:
    @app.after_request
    def schedule_access_log(response: Response) -> Response:
        state = request_state.current()
        environ = request.environ
        entry = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "request_id": state.request_id,
            "method": environ["REQUEST_METHOD"],
            "path": request.path,
            "status": response.status_code,
            "duration_ms": 0.0,
            "service": state.route,
            "upstream": state.upstream,
            "upstream_ms": _round(state.upstream_ms),
            "client_ip": environ.get("REMOTE_ADDR"),
            "bytes_sent": 0,
        }
        started = state.started
        when_sent(response, lambda sent, error: _write(entry, started, sent, error))
        return response


def _write(entry: dict, started: float, bytes_sent: int, error) -> None:
    entry["duration_ms"] = _round((time.perf_counter() - started) * 1000.0)
    entry["bytes_sent"] = bytes_sent
    if error is not None:
        entry["error"] = error.kind
    sink(json.dumps(entry, separators=(",", ":")))


def _round(ms: float | None) -> float | None:
    return None if ms is None else round(ms, 2)
