"""One JSON access-log line per request, on stdout.

The line is written when the response body has been sent (or the client went
away), so ``duration_ms`` and ``bytes_sent`` cover the whole exchange of a
streamed answer. Header values are never logged: no API key, ``Authorization``
or cookie can end up in the log. The query string is left out for the same
reason (keys and tokens travel there too). ``service`` is the route the
request belongs to, whoever answered it (the upstream, a policy, the cache);
``consumer`` the API key's owner, ``key_id`` the database key's id (never
the key), ``cache`` HIT/MISS/BYPASS, ``trace_id`` the OpenTelemetry trace when
the request is traced. ``bytes_received`` is the request body's bytes (on a
WebSocket, what the client sent after the handshake). Each finished line is
also handed to the listeners (the usage records, gateway/usage).

``log_format: text`` (or ``GATEWAY_LOG_FORMAT=text``) writes the same fields
as one readable line instead, for a terminal (``make run`` does).

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
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from flask import Flask, Response, request

from .. import state as request_state
from ..config import ConfigError, GatewayConfig
from ..transport import when_sent


def write_stdout(line: str) -> None:
    os.write(1, line.encode() + b"\n")


#: Where finished lines go: a callable taking one line (without newline).
sink = write_stdout


FORMATS = ("json", "text")


def chosen_format(config: GatewayConfig) -> str:
    """``GATEWAY_LOG_FORMAT``, else the config's ``log_format``."""
    chosen = os.environ.get("GATEWAY_LOG_FORMAT") or config.log_format
    if chosen not in FORMATS:
        raise ConfigError([f"GATEWAY_LOG_FORMAT: {chosen!r} is not one of json, text"])
    return chosen


def encoder(log_format: str) -> Callable[[dict], str]:
    """``f(entry) -> line`` in that format."""
    return _json if log_format == "json" else _text


def init_app(app: Flask, log_format: str = "json",
             listeners: Sequence[Callable[[dict], None]] = ()) -> None:
    """:param log_format: ``json`` or ``text``.
    :param listeners: called with each finished entry after it is written (usage records)."""
    encode = encoder(log_format)

    @app.after_request
    def schedule_access_log(response: Response) -> Response:
        environ = request.environ
        if environ.get(request_state.OFFLOAD_DECIDING):  # nginx's own line logs it
            return response
        state = request_state.current()
        entry = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "request_id": state.request_id,
            "method": environ["REQUEST_METHOD"],
            "path": request.path,
            "status": response.status_code,
            "duration_ms": 0.0,
            "service": state.route,
            "consumer": state.consumer,
            "issuer": state.issuer,
            "upstream": state.upstream_target,
            "upstream_ms": _round(state.upstream_ms),
            "client_ip": environ.get("REMOTE_ADDR"),
            "bytes_sent": 0,
            "cache": state.cache_status,
            "trace_id": state.trace_id,
        }
        if state.key_id is not None:  # a key from the database: its id, never the key
            entry["key_id"] = state.key_id
        if state.branch is not None:  # primary or canary, on a service with a canary
            entry["branch"] = state.branch
        if state.upstream_error is not None:  # the kind: connect, timeout, reset, tls…
            entry["upstream_error"] = state.upstream_error
        received = getattr(response, "bytes_received", None)
        if received is not None:  # a WebSocket: the bytes the client sent after the handshake
            entry["bytes_received"] = received
        started = state.started
        announced = environ.get("CONTENT_LENGTH")
        when_sent(response, lambda sent, error: _write(entry, state, announced, started, sent,
                                                       error, encode, listeners))
        return response


def _write(entry: dict, state, announced: str | None, started: float, bytes_sent: int, error,
           encode, listeners) -> None:
    entry["duration_ms"] = _round((time.perf_counter() - started) * 1000.0)
    entry["bytes_sent"] = bytes_sent
    if "bytes_received" not in entry:
        entry["bytes_received"] = _body_bytes(state, announced)
    if error is not None:
        entry["error"] = error.kind
    sink(encode(entry))
    for listener in listeners:
        listener(entry)


def _body_bytes(state, announced: str | None) -> int:
    """The request body's bytes: those read (what went upstream), else those announced
    (a body nobody read: a refused request, a blueprint reading it itself)."""
    if state.request_body is not None:
        return state.request_body.size
    return int(announced) if announced and announced.isdigit() else 0


def _json(entry: dict) -> str:
    return json.dumps(entry, separators=(",", ":"))


def _text(entry: dict) -> str:
    """``time METHOD path status duration key=value…``, ``-`` for what is unknown."""
    head = (f"{entry['time']} {entry['method']} {entry['path']} {entry['status']} "
            f"{entry['duration_ms']}ms")
    rest = " ".join(f"{key}={'-' if entry.get(key) is None else entry[key]}"
                    for key in ("service", "consumer", "key_id", "issuer", "upstream", "upstream_ms", "cache",
                                "client_ip", "bytes_received", "bytes_sent", "request_id",
                                "trace_id", "branch", "upstream_error", "error")
                    if key not in ("error", "branch", "upstream_error", "key_id")
                    or key in entry)
    return f"{head} {rest}"


def _round(ms: float | None) -> float | None:
    return None if ms is None else round(ms, 2)
