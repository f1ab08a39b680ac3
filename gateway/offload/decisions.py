"""The gateway's side of ``auth_request``: decide a request nginx holds, replay a refusal.

:class:`OffloadDecisions` wraps the app. A request to :data:`DECIDE_PATH` (nginx's
subrequest, from an address in ``metrics_allow_ips``) is turned back into the
request it stands for (``X-Original-Method``, ``-URI``, ``-Length``), without a
body, and handed to the app: the route's chain runs as for any request.

- Its view, seeing :data:`~gateway.state.OFFLOAD_DECIDING`, answers 200 with
  :data:`ALLOWED` and the headers an upstream call would carry (``X-Request-ID``,
  ``X-Consumer``, the claims' headers), each as ``X-Gateway-Up-<name>``. The answer
  headers the chain added for the client (``RateLimit-*``, ``X-Quota-*``, CORS,
  ``X-Request-ID``) go back as ``X-Gateway-Down-<name>``. nginx takes both with
  ``auth_request_set``.
- Any other answer (a refusal, a preflight) goes back to nginx as a 403 carrying the
  whole answer in :data:`ANSWER_HEADER`. ``auth_request`` passes only 401 and 403;
  nginx's ``error_page 403`` sends that header to :data:`ANSWER_PATH`, which answers
  exactly that status, those headers and that body. So a 429, 413, 400 or 503
  keeps its status, its JSON and its headers.

A decision is not a request of its own: it is neither logged nor measured. Its
answer carries :data:`LOG_HEADER` instead (allowed or not): what the gateway knows of
the request (id, service, consumer, key id, issuer, the server span's ids and start,
and a sequence number per worker). nginx writes it into the line it sends to the
gateway's log socket when the request ends, and the log reader
(gateway/offload/reader.py) makes of that line the access-log line, the metrics, the
usage and the span's end the gateway would have made. The sequence numbers, and a
heartbeat each worker sends the reader with the last one it gave, let the reader
count the lines nginx could not send (gateway/offload/logs.py).
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import os
import socket
import threading
from collections.abc import Iterable, Sequence
from urllib.parse import unquote_to_bytes

from flask import Flask, Response, request

from .. import state as request_state
from ..config import IPNetwork
from ..policies.iprules import address_in
from ..state import OFFLOAD_DECIDING

DECIDE_PATH = "/_gateway/offload/decide"
ANSWER_PATH = "/_gateway/offload/answer"
#: on the view's answer to a decision: the request may go upstream
ALLOWED = "X-Gateway-Allowed"
UP = "X-Gateway-Up-"
DOWN = "X-Gateway-Down-"
#: in a decision's environ: the Upgrade header the client sent (a WebSocket handshake)
ORIGINAL_UPGRADE = "gateway.offload.upgrade"
#: the gateway's whole answer, for nginx to replay
ANSWER_HEADER = "X-Gateway-Answer"
#: what the gateway knows of the request, for nginx's log line (JSON)
LOG_HEADER = "X-Gateway-Log"
#: where nginx sends its lines and the workers their heartbeats (``gateway serve
#: --log-socket``, ``gateway nginx --log-socket``)
LOG_SOCKET_ENV = "GATEWAY_LOG_SOCKET"
DEFAULT_LOG_SOCKET = "/run/gateway/nginx.sock"
#: seconds between a worker's heartbeats (only when it decided something since)
HEARTBEAT_SECONDS = 1.0
#: the chain's headers for the client on an allowed request (nginx adds them)
DOWNSTREAM = ("X-Request-ID", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset",
              "X-Quota-Limit", "X-Quota-Remaining", "X-Quota-Reset",
              "Access-Control-Allow-Origin", "Access-Control-Allow-Credentials",
              "Access-Control-Expose-Headers", "Vary")
#: the headers a replayed answer may carry (nothing else: the answer path writes only these)
REPLAYED = frozenset(name.lower() for name in (
    *DOWNSTREAM, "Content-Type", "WWW-Authenticate", "Retry-After", "Allow",
    "Access-Control-Allow-Methods", "Access-Control-Allow-Headers", "Access-Control-Max-Age"))


class OffloadDecisions:
    """WSGI middleware: :data:`DECIDE_PATH` and :data:`ANSWER_PATH` for nginx, the rest to
    the app."""

    def __init__(self, app, trusted: Sequence[IPNetwork]):
        """:param trusted: who may ask (nginx's address; ``metrics_allow_ips``)."""
        self.app = app
        self.trusted = trusted
        #: address -> may ask (nginx asks from one or two addresses, thousands of times a
        #: second: parsed once each)
        self._asked_from: dict[str, bool] = {}

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO")
        if path not in (DECIDE_PATH, ANSWER_PATH):
            return self.app(environ, start_response)
        if not self.may_ask(environ.get("REMOTE_ADDR") or ""):
            return _json(start_response, 404, {"error": "not_found", "message": "no route "
                                               f"for {path}"})
        if path == DECIDE_PATH:
            return self.decide(environ, start_response)
        return self.replay(environ, start_response)

    def may_ask(self, address: str) -> bool:
        known = self._asked_from.get(address)
        if known is None:
            if len(self._asked_from) > 1024:  # (anyone may knock: bounded)
                self._asked_from.clear()
            known = self._asked_from[address] = address_in(address, self.trusted)
        return known

    def decide(self, environ, start_response):
        _as_original(environ)
        captured: dict = {}

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers
            return lambda data: None
        answer = self.app(environ, capture)
        try:
            body = b"".join(answer)
        finally:
            if hasattr(answer, "close"):
                answer.close()
        status = int(captured["status"].split(" ", 1)[0])
        headers: list[tuple[str, str]] = captured["headers"]
        logged = [(name, value) for name, value in headers if name == LOG_HEADER]
        if any(name == ALLOWED for name, _ in headers):
            out = [*logged, *((name, value) for name, value in headers if name.startswith(UP))]
            out += [(DOWN + name, value) for name, value in headers if name in DOWNSTREAM]
            start_response("200 OK", [*out, ("Content-Length", "0")])
            return [b""]
        kept = [(name, value) for name, value in headers if name.lower() in REPLAYED]
        encoded = base64.urlsafe_b64encode(json.dumps(
            {"status": status, "headers": kept, "body": body.decode("latin-1")},
            separators=(",", ":")).encode()).decode()
        start_response("403 Forbidden", [(ANSWER_HEADER, encoded), *logged,
                                          ("Content-Length", "0")])
        return [b""]

    def replay(self, environ, start_response):
        try:
            answer = json.loads(base64.urlsafe_b64decode(environ.get("HTTP_X_GATEWAY_ANSWER",
                                                                     "")))
            status, headers = int(answer["status"]), answer["headers"]
            body = answer["body"].encode("latin-1")
        except (ValueError, KeyError, TypeError):
            return _json(start_response, 400, {"error": "bad_request",
                                               "message": "no answer to replay"})
        kept = [(str(name), str(value)) for name, value in headers
                if str(name).lower() in REPLAYED]
        start_response(f"{status} {_reason(status)}",
                       [*kept, ("Content-Length", str(len(body)))])
        return [body]


def init_app(app: Flask, socket_path: str | None = None) -> None:
    """Every decision's answer carries :data:`LOG_HEADER`; the worker's heartbeat starts
    with its first decision."""
    sequence = DecisionNumbers(socket_path or os.environ.get(LOG_SOCKET_ENV) or DEFAULT_LOG_SOCKET)

    @app.after_request
    def describe_for_the_log(response: Response) -> Response:
        environ = request.environ
        if not environ.get(OFFLOAD_DECIDING):
            return response
        state = request_state.current()
        described: dict = {"id": state.request_id}
        for key, value in (("service", state.route), ("consumer", state.consumer),
                           ("key_id", state.key_id), ("issuer", state.issuer)):
            if value is not None:
                described[key] = value
        span = state.span
        if span is not None:  # its end is the log reader's, when nginx's line comes
            context = span.get_span_context()
            parent = span.parent
            trace_id, span_id = f"{context.trace_id:032x}", f"{context.span_id:016x}"
            described["span"] = [trace_id, span_id,
                                 f"{parent.span_id:016x}" if parent is not None else None,
                                 span.start_time, bool(context.trace_flags.sampled)]
            if response.status_code == 200 and context.is_valid:
                response.headers[UP + "traceparent"] = (
                    f"00-{trace_id}-{span_id}-{int(context.trace_flags):02x}")
        if not long_lived(environ):  # a stream's line may come hours later: not counted
            described["seq"] = sequence.next()
        response.headers[LOG_HEADER] = json.dumps(described, separators=(",", ":"))
        return response


def long_lived(environ: dict) -> bool:
    """A WebSocket or an event stream: its line comes when it ends, whenever that is."""
    return bool(environ.get(ORIGINAL_UPGRADE)) or \
        "text/event-stream" in environ.get("HTTP_ACCEPT", "")


class DecisionNumbers:
    """The worker's decision numbers (``<pid>.<n>``), and the heartbeat that tells the
    log reader the last one given, so that it can count the lines that never came
    after the last one it saw."""

    def __init__(self, socket_path: str):
        self.socket_path = socket_path
        self.counter = itertools.count(1)
        self.last = 0
        self.pid = 0
        self._thread: threading.Thread | None = None

    def next(self) -> str:
        pid = os.getpid()
        if pid != self.pid:  # first decision of this process (a fork copies the counter)
            self.pid, self.counter, self._thread = pid, itertools.count(1), None
        if self._thread is None:
            self._thread = threading.Thread(target=self._beat, daemon=True,
                                            name="gateway-offload-heartbeat")
            self._thread.start()
        self.last = next(self.counter)
        return f"{pid}.{self.last}"

    def _beat(self) -> None:
        sent = 0
        pid = self.pid
        channel = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        channel.setblocking(False)
        event = threading.Event()
        while pid == os.getpid():
            event.wait(HEARTBEAT_SECONDS)
            last = self.last
            if last == sent:
                continue
            try:  # never waits: a lost heartbeat is followed by the next
                channel.sendto(json.dumps({"decided": [pid, last]}).encode(), self.socket_path)
                sent = last
            except OSError:
                pass


def _as_original(environ: dict) -> None:
    """The subrequest's environ, made the request it stands for (no body)."""
    uri = environ.pop("HTTP_X_ORIGINAL_URI", "") or "/"
    path, _, query = uri.partition("?")
    environ["REQUEST_METHOD"] = environ.pop("HTTP_X_ORIGINAL_METHOD", "") or "GET"
    environ["PATH_INFO"] = unquote_to_bytes(path).decode("latin-1")
    environ["QUERY_STRING"] = query
    environ["REQUEST_URI"] = environ["RAW_URI"] = uri
    length = environ.pop("HTTP_X_ORIGINAL_LENGTH", "")
    environ["CONTENT_LENGTH"] = length if length.isdigit() else ""
    encoding = environ.pop("HTTP_X_ORIGINAL_TRANSFER_ENCODING", "")
    if encoding:
        environ["HTTP_TRANSFER_ENCODING"] = encoding
    # (hop-by-hop: nginx passes it under another name; the chain decides the handshake
    # as the request it is, and only the log's numbering reads it)
    environ[ORIGINAL_UPGRADE] = environ.pop("HTTP_X_ORIGINAL_UPGRADE", "")
    environ["wsgi.input"] = io.BytesIO(b"")
    environ[OFFLOAD_DECIDING] = True


def _json(start_response, status: int, document: dict) -> Iterable[bytes]:
    body = json.dumps(document).encode()
    start_response(f"{status} {_reason(status)}", [("Content-Type", "application/json"),
                                                   ("Content-Length", str(len(body)))])
    return [body]


def _reason(status: int) -> str:
    from http import HTTPStatus
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Status"
