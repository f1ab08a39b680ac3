"""``validate``: a request checked against its operation in the service's OpenAPI document.

After authentication and the quota (a refused request has spent its hit)
and before the canary, the cache and transforms. The operation is found by
method and path as the upstream will see it (after ``strip_prefix``); its
parameters and body are checked (gateway/validation). ``enforce`` refuses a
request with problems with the configured status and every problem, up to
``max_errors``, before anything reaches the upstream; ``report`` lets it pass.
Either way each problem is counted in ``gateway_validation_failures_total``
and logged, at most once per operation every :data:`LOG_EVERY` seconds.

A service whose document is missing (``openapi`` could not be fetched at
start: gateway/openapi/pending.py fetches it again with backoff) has this
step all the same: until the document arrives every request but WebSocket
handshakes and CORS preflights is refused 503 ``validation_unavailable``
with ``Retry-After`` (the seconds to the next try), or passes unvalidated
with ``on_missing_document: pass``. Validation is never silently off.

With ``responses: report`` a JSON answer up to :data:`MAX_ANSWER_BYTES` is
copied as it streams to the client and checked once it has been sent: the
client gets it unchanged and undelayed; mismatches and undocumented statuses
are counted (``mode="response"``) and logged.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from flask import request

from .. import state as request_state
from ..config import ServiceConfig
from ..errors import GatewayError
from ..openapi.pending import PendingDocument
from ..routing.paths import prefix_segments, service_path
from ..routing.requestbody import TooLarge, body_of, buffer_limit
from ..routing.websocket import is_handshake
from ..transport import BodyCopy, UpstreamBody
from ..validation import (
    Operation,
    Operations,
    Problem,
    Request,
    UnsupportedMediaType,
    body_problems,
    check_request,
    compiled_operations,
    media_type,
)
from . import Policy

log = logging.getLogger("gateway.validation")

#: answers larger than this are not checked
MAX_ANSWER_BYTES = 1024 * 1024
#: seconds between two log lines about one operation's problems
LOG_EVERY = 10.0

#: ``f(operation, location, mode)``
Counter = Callable[[str, str, str], None]


class RequestValidation(Policy):
    step = "validate"

    def __init__(self, service: ServiceConfig, operations: Operations | None, count: Counter,
                 clock: Callable[[], float] = time.monotonic,
                 pending: PendingDocument | None = None,
                 on_document: Callable[[bool, bool], None] | None = None):
        """:param operations: None while the document is missing, or when it is unusable.
        :param pending: the document being fetched again, when the fetch at start failed.
        :param on_document: ``f(active, missing)`` whenever that changes (the gauges)."""
        config = service.validate_
        assert config is not None
        self.service = service.name
        self.source = service.openapi
        self.operations = operations
        self.pending = pending
        self.refuse_missing = config.on_missing_document == "refuse"
        self.on_document = on_document or (lambda active, missing: None)
        self.mode = config.requests
        self.check_answers = config.responses == "report"
        self.status = config.status
        self.refuse_unknown = config.unknown_operations == "refuse"
        self.max_errors = config.max_errors
        self.max_body = buffer_limit(service.max_body_bytes)
        self.strip = prefix_segments(service.prefix, service.strip_prefix)
        # the document describes what the service gets: a reshaped body is not the client's
        transform = service.transform
        self.check_bodies = not (transform and transform.request.body)
        self.count = count
        self.clock = clock
        self.logged: dict[str, float] = {}
        if pending is not None:
            pending.on_arrival(self.arrived)
        self.on_document(operations is not None, self.waiting)

    @property
    def waiting(self) -> bool:
        """The document is missing: fetched again until it comes."""
        return self.pending is not None and self.pending.waiting

    def arrived(self, document: dict) -> None:
        """The document came (gateway/openapi/pending.py's thread): validate against it."""
        self.operations = compiled_operations(self.service, self.source, document)
        self.pending = None
        self.on_document(self.operations is not None, False)

    def before(self):
        state = request_state.current()
        if state.cors_preflight or is_handshake(request.environ):
            return None  # a preflight or a WebSocket handshake: not an operation's request
        operations = self.operations
        if operations is None:
            return self.without_document()
        path = service_path(request.environ, self.strip)
        operation, groups, allowed = operations.find(request.method, path)
        if operation is None:
            return self.unknown(allowed)
        state.operation = operation
        if self.mode == "off":
            return None
        body = self.read_body(operation) \
            if operation.body is not None and self.check_bodies else None
        try:
            problems = check_request(operation, Request(
                request.method, groups, request.args, request.headers, request.cookies,
                request.headers.get("Content-Type"), body), self.max_errors, self.check_bodies)
        except UnsupportedMediaType as exc:
            self.found(operation, [Problem("body", "contentType", f"{exc.given} is not "
                                           "accepted")], self.mode)
            if self.mode == "enforce":
                raise GatewayError(415, "unsupported_media_type",
                                   f"{request.method} {operation.template} accepts "
                                   f"{', '.join(exc.accepted)}, not {exc.given}") from None
            return None
        if not problems:
            return None
        self.found(operation, problems, self.mode)
        if self.mode == "enforce":
            raise GatewayError(self.status, "invalid_request", (
                f"the request does not match {request.method} {operation.template} in the "
                f"{self.service} service's OpenAPI document: {len(problems)} "
                f"problem{'s' if len(problems) != 1 else ''}, listed in errors"),
                extra={"errors": [p.as_dict() for p in problems]})
        return None

    def without_document(self) -> None:
        """No usable document: refused while it is being fetched again (unless the service
        says pass); an invalid one (a WARNING said so) lets requests through."""
        pending = self.pending
        if pending is None or not pending.waiting or not self.refuse_missing:
            return None
        raise GatewayError(503, "validation_unavailable", (
            f"the {self.service} service validates requests against its OpenAPI document "
            f"({pending.url}), which could not be fetched yet; try again later"),
            headers={"Retry-After": str(pending.backoff.retry_after())})

    def unknown(self, allowed: list[str]):
        if not self.refuse_unknown:
            return None
        self.count("(unknown)", "path", "enforce")
        if allowed:
            raise GatewayError(405, "method_not_allowed", f"{request.path} accepts "
                               f"{', '.join(allowed)} (the service's OpenAPI document)",
                               headers={"Allow": ", ".join(allowed)})
        raise GatewayError(404, "unknown_operation", f"the {self.service} service's OpenAPI "
                           f"document describes no operation at {request.path}")

    def read_body(self, operation: Operation) -> bytes | None:
        """The body, read once (the proxy sends these same bytes on); None when there is
        none. Too large to check: refused (enforce), or passed on unchecked (report)."""
        try:
            return body_of().whole(self.max_body)
        except TooLarge:
            self.too_large(operation)
            return None

    def too_large(self, operation: Operation) -> None:
        if self.mode == "enforce":
            raise GatewayError(413, "body_too_large", f"validation reads bodies of at most "
                               f"{self.max_body} bytes; send less, or set validate.requests: "
                               "report for this service")
        # what was read, then the rest, goes upstream unchecked (routing/requestbody.py)
        log.info("%s %s: body too large to validate, passed unchecked", self.service,
                 operation.name)

    def found(self, operation: Operation, problems: list[Problem], mode: str) -> None:
        for problem in problems:
            self.count(operation.name, problem.location, mode)
        now = self.clock()
        key = f"{mode}:{operation.name}"
        if now - self.logged.get(key, -LOG_EVERY) >= LOG_EVERY:
            self.logged[key] = now
            log.warning("%s %s: %d validation problem(s) (%s), e.g. %s", self.service,
                        operation.name, len(problems), mode, json.dumps(problems[0].as_dict()))

    def after(self, response):
        operation = request_state.current().operation
        if not self.check_answers or operation is None:
            return response
        body = response.response
        if isinstance(body, UpstreamBody) and request.method != "HEAD":
            answers = documented_answers(operation, response.status_code)
            if answers is None:
                self.found(operation, [Problem("status", "undocumented", f"status "
                                               f"{response.status_code} is not documented")],
                           "response")
                return response
            given = media_type(response.headers.get("Content-Type"))
            check = answers.get(given) if given else None
            length = response.headers.get("Content-Length")
            too_long = length is not None and length.isdigit() and int(length) > MAX_ANSWER_BYTES
            if check is not None and not too_long:
                body.subscribe(_AnswerCheck(self, operation, check))
        return response


def documented_answers(operation: Operation, status: int) -> dict | None:
    """The answer documented for a status (exact, ``2XX``, then ``default``), by media type."""
    for key in (str(status), f"{str(status)[0]}XX", "default"):
        if key in operation.responses:
            return operation.responses[key]
    return None


class _AnswerCheck(BodyCopy):
    """A copy of a JSON answer as it streams, checked once the client has it all."""

    def __init__(self, policy: RequestValidation, operation: Operation, check):
        super().__init__(MAX_ANSWER_BYTES)
        self.policy, self.operation, self.check = policy, operation, check

    def on_close(self, body: UpstreamBody) -> None:
        data = self.take()
        if data is None or not body.complete:
            return
        try:
            value = json.loads(data)
        except ValueError:
            problems = [Problem("body", "json", "the answer is not valid JSON", pointer="")]
        else:
            problems = body_problems(self.check, value, "body", self.policy.max_errors)
        if problems:
            self.policy.found(self.operation, problems, "response")
