"""A real OTLP/HTTP trace receiver for the tests: decodes what exporters post to /v1/traces.

Each span is kept as a plain dict (name, kind, ids as hex, attributes), in
the order received; ``hang`` makes it accept and never answer (a collector
that is up but stuck).
"""

from __future__ import annotations

import threading
import time

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

KINDS = {Span.SPAN_KIND_SERVER: "server", Span.SPAN_KIND_CLIENT: "client",
         Span.SPAN_KIND_INTERNAL: "internal"}


class OtlpReceiver:
    def __init__(self):
        self.spans: list[dict] = []
        self.hang = threading.Event()
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        if self.hang.is_set():
            time.sleep(30)
        export = ExportTraceServiceRequest.FromString(body)
        with self.lock:
            for resource in export.resource_spans:
                service = {a.key: a.value.string_value for a in resource.resource.attributes}
                for scope in resource.scope_spans:
                    for span in scope.spans:
                        self.spans.append({
                            "name": span.name, "kind": KINDS.get(span.kind, str(span.kind)),
                            "trace_id": span.trace_id.hex(), "span_id": span.span_id.hex(),
                            "parent_id": span.parent_span_id.hex(),
                            "service": service.get("service.name"),
                            "attributes": {a.key: _value(a.value) for a in span.attributes},
                            "error": span.status.code == 2})
        answer = ExportTraceServiceResponse().SerializeToString()
        start_response("200 OK", [("Content-Type", "application/x-protobuf"),
                                  ("Content-Length", str(len(answer)))])
        return [answer]

    def wait_for(self, predicate, timeout: float = 15) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                found = [s for s in self.spans if predicate(s)]
            if found:
                return found
            time.sleep(0.05)
        return []


def _value(value):
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None
