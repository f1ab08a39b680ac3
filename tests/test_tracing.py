"""OpenTelemetry traces, exported over OTLP/HTTP to a real receiver on loopback."""

from __future__ import annotations

import json
import time

import pytest
import requests

from gateway.config import ConfigError, parse_config
from gateway.telemetry import accesslog
from tests.backends import shop_backend
from tests.conftest import dead_port
from tests.otlp_receiver import OtlpReceiver

INCOMING_TRACE = "0af7651916cd43dd8448eb211c80319c"
INCOMING_SPAN = "b7ad6b7169203331"


@pytest.fixture
def receiver(serve):
    server = serve(OtlpReceiver())
    server.app.url = server.url
    return server.app


def traced(receiver, services, **extra) -> dict:
    return {"tracing": {"exporter": "otlp", "endpoint": receiver.url, "service_name": "edge"},
            "services": services, **extra}


def flush(gw) -> None:
    gw.app.extensions["gateway"].tracing.provider.force_flush()


def test_a_request_continues_the_client_trace_and_the_upstream_gets_the_client_span(
        make_gateway, upstream, receiver, monkeypatch):
    lines: list[str] = []
    monkeypatch.setattr(accesslog, "sink", lines.append)
    gw = make_gateway(traced(receiver, {"users": upstream.url}))
    answer = requests.get(f"{gw.url}/users/echo", headers={
        "traceparent": f"00-{INCOMING_TRACE}-{INCOMING_SPAN}-01", "X-Request-ID": "t-1"})
    flush(gw)
    (server,) = receiver.wait_for(lambda s: s["kind"] == "server")
    (client,) = receiver.wait_for(lambda s: s["kind"] == "client")
    assert server["trace_id"] == client["trace_id"] == INCOMING_TRACE
    assert server["parent_id"] == INCOMING_SPAN
    assert client["parent_id"] == server["span_id"]
    assert server["service"] == "edge" and server["name"] == "GET users"
    assert server["attributes"]["gateway.service"] == "users"
    assert server["attributes"]["gateway.request_id"] == "t-1"
    assert server["attributes"]["http.response.status_code"] == 200
    assert client["attributes"]["server.address"] == upstream.url
    assert client["attributes"]["gateway.attempt"] == 1
    assert client["attributes"]["gateway.retry"] is False
    assert client["attributes"]["gateway.breaker.state"] == "none"
    # the upstream's parent is the gateway's client span: same trace, new parent
    sent = answer.json()["headers"]["traceparent"]
    assert sent == f"00-{INCOMING_TRACE}-{client['span_id']}-01"
    # and the access log names the trace
    assert json.loads(lines[-1])["trace_id"] == INCOMING_TRACE


def test_each_attempt_is_a_client_span(make_gateway, upstream, receiver):
    dead = f"http://127.0.0.1:{dead_port()}"
    gw = make_gateway(traced(receiver, {"users": {
        "upstream": [dead, upstream.url], "circuit_breaker": {"failures": 5}}}))
    for _ in range(2):  # round-robin: one of the two starts on the dead target
        assert requests.get(f"{gw.url}/users/1").status_code == 200
    flush(gw)
    clients = receiver.wait_for(lambda s: s["kind"] == "client")
    failed = [s for s in clients if s["attributes"]["server.address"] == dead]
    assert failed and failed[0]["error"] and failed[0]["attributes"]["error.type"] == "connect"
    retried = [s for s in clients if s["trace_id"] == failed[0]["trace_id"] and s is not failed[0]]
    assert retried[0]["attributes"]["gateway.attempt"] == 2
    assert retried[0]["attributes"]["gateway.retry"] is True
    assert retried[0]["attributes"]["gateway.breaker.state"] in ("closed", "tripping")


def test_aggregate_calls_are_spans_under_the_request(make_gateway, serve, receiver):
    shop = {name: serve(shop_backend(name)) for name in ("users", "orders")}
    gw = make_gateway(traced(receiver, {n: s.url for n, s in shop.items()}, aggregates=[{
        "path": "/dash/<user_id>", "calls": {
            "user": {"service": "users", "path": "/users/{user_id}"},
            "orders": {"service": "orders", "path": "/orders"}}}]))
    assert requests.get(f"{gw.url}/dash/1").status_code == 200
    flush(gw)
    (server,) = receiver.wait_for(lambda s: s["kind"] == "server")
    calls = receiver.wait_for(lambda s: s["kind"] == "internal")
    assert sorted(c["name"] for c in calls) == ["aggregate call orders", "aggregate call user"]
    assert {c["parent_id"] for c in calls} == {server["span_id"]}
    clients = receiver.wait_for(lambda s: s["kind"] == "client")
    assert {c["parent_id"] for c in clients} == {c["span_id"] for c in calls}
    # each call's upstream got its own client span as parent
    for backend in shop.values():
        parent = backend.app.config["SEEN"][-1]["headers"]["Traceparent"].split("-")[2]
        assert parent in {c["span_id"] for c in clients}


def test_a_collector_that_is_down_or_stuck_changes_nothing_for_clients(make_gateway, upstream,
                                                                       receiver):
    receiver.hang.set()  # accepts the export and never answers
    stuck = make_gateway(traced(receiver, {"users": upstream.url}))
    down = make_gateway({"tracing": {"endpoint": f"http://127.0.0.1:{dead_port()}"},
                         "services": {"users": upstream.url}})
    for gw in (stuck, down):
        slowest = 0.0
        for _ in range(30):  # over 3 s: several export rounds (one a second) fall in
            started = time.monotonic()
            assert requests.get(f"{gw.url}/users/1").status_code == 200
            slowest = max(slowest, time.monotonic() - started)
            time.sleep(0.1)
        # the exporter waits 5 s on a stuck collector; no request waited on it
        assert slowest < 1.0, slowest


def test_sample_ratio_zero_records_nothing_new_but_follows_a_sampled_parent(make_gateway,
                                                                            upstream, receiver):
    gw = make_gateway({"tracing": {"endpoint": receiver.url, "sample_ratio": 0},
                       "services": {"users": upstream.url}})
    requests.get(f"{gw.url}/users/1")
    requests.get(f"{gw.url}/users/1", headers={
        "traceparent": f"00-{INCOMING_TRACE}-{INCOMING_SPAN}-01"})
    flush(gw)
    spans = receiver.wait_for(lambda s: True)
    assert spans and {s["trace_id"] for s in spans} == {INCOMING_TRACE}


def test_traces_leave_every_gunicorn_worker(gunicorn_gateway, upstream, receiver):
    gw = gunicorn_gateway(traced(receiver, {"users": upstream.url}), workers=2)
    for _ in range(20):
        assert requests.get(f"{gw.url}/users/1", timeout=10).status_code == 200
    traces = {line["trace_id"] for line in gw.access_lines(20)}
    assert len(traces) == 20
    # exported in the background, a second at a time, by each worker's own exporter
    assert receiver.wait_for(lambda s: False, timeout=0) == []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        exported = {s["trace_id"] for s in receiver.spans if s["kind"] == "server"}
        if exported >= traces:
            break
        time.sleep(0.1)
    assert exported >= traces
    pids = {line for line in gw.log().splitlines() if "Booting worker" in line}
    assert len(pids) == 2


@pytest.mark.parametrize("tracing, problem", [
    ({"exporter": "zipkin"}, "tracing.exporter: 'zipkin' is not one of 'otlp' or 'console'"),
    ({"endpoint": "localhost:4318"}, "tracing.endpoint: 'localhost:4318' is not an http(s) URL"),
    ({"sample_ratio": 1.5}, "tracing.sample_ratio: expected a number from 0 to 1, got 1.5"),
])
def test_tracing_config_mistakes(tracing, problem):
    with pytest.raises(ConfigError) as caught:
        parse_config({"services": {"users": "http://127.0.0.1:9"}, "tracing": tracing})
    assert problem in caught.value.problems
