"""An aggregate's view: run its calls concurrently, merge the answers, say what failed.

:class:`AggregateView` is the view of one ``aggregates:`` entry. Per request
it starts every call whose references are ready on the worker's bounded
:class:`CallPool`, starts each waiting call as soon as the calls it names
have answered, and stops waiting at the aggregate's ``timeout``; the answer
takes as long as the slowest chain of calls, not their sum.

Each call goes through its service's :class:`~gateway.transport.Upstream`
(pools, timeouts, retries, breaker), carries the request id and consumer,
and gets the service's ``transform``. The merge is namespaced, one key per
call, so no answer overwrites another. A failed call's key holds its
``default`` (or is absent) and ``_errors.<call>`` says why; the answer is
200 with ``X-Gateway-Completed: false``, or 502 when a ``required`` call or
every call failed.
"""

from __future__ import annotations

import contextvars
import functools
import json
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any
from urllib.parse import urlencode

from flask import Response

from ..config.aggregates import AggregateConfig, CallConfig
from ..errors import GatewayError
from ..telemetry.tracing import call_span
from ..transport import Upstream, UpstreamError
from .templates import Unresolved, fill_json, fill_text
from .transform import JSON_FAILURES, Transformer, search

COMPLETED_HEADER = "X-Gateway-Completed"


class CallFailed(Exception):
    """Why one call has no answer, as ``_errors.<call>`` shows it."""

    def __init__(self, status: int, error: str, message: str):
        super().__init__(message)
        self.status, self.error, self.message = status, error, message

    def as_json(self) -> dict:
        return {"status": self.status, "error": self.error, "message": self.message}


class CallPool:
    """The worker's bounded pool for aggregate calls, made on first use (after fork).

    Under gunicorn's gevent worker its threads are greenlets; a request waits
    on its own calls' futures, and a call never waits on another, so a full
    pool only queues calls, never deadlocks.
    """

    def __init__(self, size: int):
        self.size = size
        self._executor: ThreadPoolExecutor | None = None

    def submit(self, fn: Callable[[], Any]) -> Future:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.size, thread_name_prefix="aggregate-call")
        # the call sees the request's context: its id, consumer and state
        return self._executor.submit(contextvars.copy_context().run, fn)


class AggregateView:
    """The view of one aggregate route."""

    def __init__(self, config: AggregateConfig, upstreams: dict[str, Upstream],
                 transformers: dict[str, Transformer], pool: CallPool,
                 on_call: Callable[[str, str, float, str | None], None] = lambda *_: None):
        """:param on_call: ``f(service, call, seconds, error_code)`` after each call (metrics)."""
        self.config = config
        self.upstreams = upstreams
        self.transformers = transformers
        self.pool = pool
        self.on_call = on_call
        self.dependencies = config.dependencies()
        self.__name__ = self.__qualname__ = f"aggregate_{config.route_name}"

    def __call__(self, **converted) -> Response:
        # <int:id> and friends give numbers: the templates want the text
        params = {name: str(value) for name, value in converted.items()}
        for name, value in params.items():
            if value in (".", "..") or "\\" in value:
                raise GatewayError(400, "bad_path", f"{value!r} is not a valid {name}")
        answers, errors = self.run_calls(params)
        return self.answer(answers, errors)

    def run_calls(self, params: dict[str, str]) -> tuple[dict[str, Any], dict[str, CallFailed]]:
        """Every call's answer or failure, each started once its sources are in."""
        deadline = time.monotonic() + self.config.timeout
        raw: dict[str, Any] = {}       # answers as the services gave them, for references
        answers: dict[str, Any] = {}   # after `select`, for the merge
        errors: dict[str, CallFailed] = {}
        waiting = dict(self.dependencies)
        running: dict[Future, str] = {}
        while True:
            started = True
            while started:  # a call failing before it starts may unblock others
                started = False
                for name, needs in list(waiting.items()):
                    if not needs <= (raw.keys() | errors.keys()):
                        continue
                    del waiting[name]
                    started = True
                    failed = sorted(needs & errors.keys())
                    if failed:
                        errors[name] = CallFailed(424, "dependency_failed",
                                                  f"call {failed[0]!r}, whose answer it uses, failed")
                        continue
                    job = functools.partial(self.call, name, params, dict(raw))
                    running[self.pool.submit(job)] = name
            if not running:
                break
            remaining = deadline - time.monotonic()
            done = wait(running, timeout=remaining, return_when=FIRST_COMPLETED)[0] if remaining > 0 else set()
            if not done:
                late = CallFailed(504, "gateway_timeout", f"no answer within the aggregate's "
                                  f"timeout of {self.config.timeout:g} s")
                for name in [*running.values(), *waiting]:
                    errors[name] = late
                break
            for future in done:
                name = running.pop(future)
                try:
                    raw[name], answers[name] = future.result()
                except CallFailed as failure:
                    errors[name] = failure
        return answers, errors

    def call(self, name: str, params: dict[str, str], earlier: dict[str, Any]) -> tuple[Any, Any]:
        """One call, run on the pool: its raw answer and its selected value."""
        call = self.config.calls[name]
        started = time.perf_counter()
        error = None
        try:
            with call_span(f"aggregate call {name}", {"gateway.call": name,
                                                      "gateway.service": call.service}):
                document = self.fetch(call, params, earlier)
            selected = document
            if call.select:
                try:
                    selected = search(call.select, document)
                except JSON_FAILURES as exc:
                    raise CallFailed(502, "select_failed", f"select {call.select!r} failed "
                                     f"on the answer: {exc}") from None
            return document, selected
        except CallFailed as failure:
            error = failure.error
            raise
        finally:
            self.on_call(call.service, name, time.perf_counter() - started, error)

    def fetch(self, call: CallConfig, params: dict[str, str], earlier: dict[str, Any]) -> Any:
        """Send the call to its service and read its JSON answer, at most ``max_call_bytes``."""
        try:
            path = fill_text(call.path, params, earlier, encode=True)
            query = urlencode({k: fill_text(v, params, earlier) for k, v in call.query.items()})
            body = fill_json(call.body, params, earlier) if call.body is not None else None
        except Unresolved as exc:
            raise CallFailed(424, "unresolved_reference", str(exc)) from None
        headers = {"Accept": "application/json", "Accept-Encoding": "identity"}
        data = None
        if body is not None:
            data = json.dumps(body, separators=(",", ":")).encode()
            headers.update({"Content-Type": "application/json", "Content-Length": str(len(data))})
        transformer = self.transformers.get(call.service)
        if transformer is not None:
            try:
                headers, query, data = transformer.outgoing(headers, query, data)
            except GatewayError as exc:
                raise CallFailed(exc.status, exc.code, exc.message) from None
        target = f"{path}?{query}" if query else path
        service = self.upstreams[call.service]
        cap = self.config.max_call_bytes
        try:
            response = service.send(call.method, target, headers, data, can_retry=True)
            try:
                content = response.read_up_to(cap, decode=True)
            finally:
                response.release()
        except UpstreamError as exc:
            raise CallFailed(exc.status, exc.code, f"the {call.service} service: {exc.message}") from None
        if len(content) > cap:
            raise CallFailed(502, "response_too_large", f"the {call.service} service answered "
                             f"more than max_call_bytes ({cap} bytes)")
        if not 200 <= response.status < 300:
            raise CallFailed(response.status, "upstream_status",
                             f"the {call.service} service answered {response.status}")
        try:
            document = json.loads(content)
        except JSON_FAILURES:
            raise CallFailed(502, "invalid_json", f"the {call.service} service answered "
                             f"something that is not JSON "
                             f"({response.headers.get('content-type') or 'no Content-Type'})") from None
        if transformer is not None and transformer.reshapes_answers:
            reshaped = transformer.response_body(content)
            if reshaped is not None:
                document = json.loads(reshaped)
        return document

    def answer(self, answers: dict[str, Any], errors: dict[str, CallFailed]) -> Response:
        """The merged (and shaped) answer; 502 when a required call or every call failed."""
        calls = self.config.calls
        failures = {name: errors[name].as_json() for name in calls if name in errors}
        headers = {COMPLETED_HEADER: "false" if failures else "true"}
        required = [name for name in failures if calls[name].required]
        if required or len(failures) == len(calls):
            why = (f"required call {required[0]!r} failed" if required else "every call failed")
            raise GatewayError(502, "bad_gateway", f"{why}; _errors says why",
                               headers=headers, extra={"_errors": failures})
        merged = {name: answers[name] if name in answers else calls[name].default
                  for name in calls if name in answers or calls[name].has_default}
        result: Any = merged
        if self.config.shape:
            try:
                result = search(self.config.shape, merged)
            except JSON_FAILURES as exc:
                raise GatewayError(502, "bad_gateway", f"the aggregate's shape failed on the "
                                   f"answers ({exc})", headers=headers,
                                   extra={"_errors": failures}) from None
        if failures and isinstance(result, dict):
            result = {**result, "_errors": failures}
        return Response(json.dumps(result), status=200, headers=headers,
                        mimetype="application/json")
