"""OpenTelemetry traces: a server span per request, a client span per upstream attempt.

Off unless the config has ``tracing:``; then :class:`Tracing` owns a
``TracerProvider`` of its own (no global state: each app its own), whose
``BatchSpanProcessor`` exports in a background thread, so a slow or absent
collector never touches a request: spans wait in a bounded queue and are
dropped when it is full. The provider is made in ``create_app``, which under
gunicorn runs in each worker after the fork, so every worker has its own
exporter thread (a greenlet under the gevent worker).

- The server span continues an incoming ``traceparent`` and carries the
  route, service, consumer, status and request id; its trace id goes on the
  request's state, and from there into the access log.
- Each upstream attempt is a client span (target, attempt number, retry,
  breaker state) and the upstream receives it as its parent in a new
  ``traceparent``; the client's own ``traceparent`` is replaced.
- Each aggregate call is an internal span under the request's span, parent
  of its own attempts (:func:`call_span`).
- A request of an offloaded service (gateway/offload): its decision starts the
  server span, the log reader ends it when nginx's line comes.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator

from flask import Flask, Response, request
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, format_trace_id, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from .. import state as request_state
from ..config.tracing import TracingConfig
from ..transport import when_sent

#: The span an upstream attempt is a child of, when not the request's own
#: (an aggregate call's span, set for the duration of the call).
_PARENT: contextvars.ContextVar[Span | None] = contextvars.ContextVar("gateway_span", default=None)
_PROPAGATOR = TraceContextTextMapPropagator()
_TRACE_HEADERS = ("traceparent", "tracestate")


def exporter_for(config: TracingConfig) -> SpanExporter:
    if config.exporter == "console":
        return ConsoleSpanExporter()
    # imported here: it pulls in requests, which the gunicorn master must not import
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    return OTLPSpanExporter(endpoint=f"{config.endpoint}/v1/traces", timeout=5)


class Tracing:
    """One app's tracer provider, exporter and the hooks that make the spans."""

    def __init__(self, config: TracingConfig, exporter: SpanExporter | None = None,
                 id_generator: IdGenerator | None = None):
        """:param id_generator: the ids of new spans (the offload log reader's gives those
        a decision chose)."""
        self.provider = TracerProvider(
            resource=Resource.create({"service.name": config.service_name}),
            sampler=ParentBased(TraceIdRatioBased(config.sample_ratio)),
            id_generator=id_generator)
        self.provider.add_span_processor(BatchSpanProcessor(
            exporter or exporter_for(config), schedule_delay_millis=1000))
        self.tracer = self.provider.get_tracer("gateway")

    def init_app(self, app: Flask) -> None:
        """Start the server span right after the request's state is made."""
        @app.before_request
        def start_server_span() -> None:
            state = request_state.current()
            parent = _PROPAGATOR.extract(carrier=request.headers)
            span = self.tracer.start_span(
                f"{request.method} {state.route or 'gateway'}", context=parent,
                kind=SpanKind.SERVER, attributes={
                    "http.request.method": request.method, "url.path": request.path,
                    "gateway.request_id": state.request_id, "client.address":
                        request.remote_addr or ""})
            state.span = span
            state.tracing = self
            context = span.get_span_context()
            if context.is_valid and context.trace_flags.sampled:
                state.trace_id = format_trace_id(context.trace_id)

        @app.after_request
        def finish_server_span(response: Response) -> Response:
            state = request_state.current_or_none()
            if state is None or state.span is None:
                return response
            span = state.span
            span.set_attribute("http.response.status_code", response.status_code)
            if state.route:
                span.set_attribute("gateway.service", state.route)
            if state.consumer:
                span.set_attribute("gateway.consumer", state.consumer)
            if state.key_id:
                span.set_attribute("gateway.key_id", state.key_id)
            if response.status_code >= 500:
                span.set_status(Status(StatusCode.ERROR))
            if request.environ.get(request_state.OFFLOAD_DECIDING):
                return response  # ended by the log reader, when nginx's line comes
            when_sent(response, lambda sent, error: _end(span, error))
            return response

    def attempt(self, method: str, target: str, number: int, breaker: str,
                headers: dict[str, str]) -> Callable[[int | None, str | None], None]:
        """A client span for one upstream attempt; its traceparent goes in ``headers``."""
        state = request_state.current_or_none()
        parent = _PARENT.get() or (state.span if state else None)
        if parent is None:
            return _nothing
        span = self.tracer.start_span(f"{method} {target}", kind=SpanKind.CLIENT,
                                      context=set_span_in_context(parent), attributes={
                                          "http.request.method": method, "server.address": target,
                                          "gateway.attempt": number, "gateway.retry": number > 1,
                                          "gateway.breaker.state": breaker})
        for name in [k for k in headers if k.lower() in _TRACE_HEADERS]:
            del headers[name]
        _PROPAGATOR.inject(headers, context=set_span_in_context(span))

        def done(status: int | None, error: str | None) -> None:
            if status is not None:
                span.set_attribute("http.response.status_code", status)
            if error is not None or (status or 0) >= 500:
                span.set_status(Status(StatusCode.ERROR, error))
                if error is not None:
                    span.set_attribute("error.type", error)
            span.end()
        return done

    def shutdown(self) -> None:
        self.provider.shutdown()


@contextlib.contextmanager
def call_span(name: str, attributes: dict) -> Iterator[None]:
    """An internal span around an aggregate call (nothing when the request is not traced)."""
    state = request_state.current_or_none()
    tracing = state.tracing if state else None
    if tracing is None or state is None or state.span is None:
        yield
        return
    span = tracing.tracer.start_span(name, context=set_span_in_context(state.span),
                                     kind=SpanKind.INTERNAL, attributes=attributes)
    token = _PARENT.set(span)
    try:
        yield
    finally:
        _PARENT.reset(token)
        span.end()


def _end(span: Span, error) -> None:
    if error is not None:
        span.set_status(Status(StatusCode.ERROR, error.kind))
    span.end()


def _nothing(status: int | None, error: str | None) -> None:
    pass

