"""Circuit breakers: open after N failures, 503 at once, one probe, close on success."""

from __future__ import annotations

import json
import threading
import time

import pytest

from gateway.testing import MovedClock
from tests.conftest import dead_port, raw_request
from tests.upstream import UpstreamApp


class Flaky(UpstreamApp):
    """Answers 500 while `failing` is set, 200 otherwise; counts what reaches it."""

    def __init__(self, name):
        super().__init__(name)
        self.failing = True
        self.delay = 0.0

    def __call__(self, environ, start_response):
        self.hits += 1
        time.sleep(self.delay)
        status = "500 Broken" if self.failing else "200 OK"
        body = json.dumps({"upstream": self.name}).encode()
        start_response(status, [("Content-Length", str(len(body)))])
        return [body]


@pytest.fixture
def flaky(serve):
    return serve(Flaky("flaky"))


def breaker_gateway(make_gateway, upstream_url, storage, reset_after=1, clock=None):
    return make_gateway({"storage": storage, "services": {"svc": {
        "upstream": upstream_url, "retries": 0,
        "circuit_breaker": {"failures": 3, "reset_after": reset_after}}}}, clock=clock)


@pytest.mark.fault
def test_opens_after_consecutive_failures_and_answers_503_at_once(make_gateway, flaky, storage):
    gw = breaker_gateway(make_gateway, flaky.url, storage, reset_after=30)
    assert [raw_request(gw.port, "GET", "/svc/x").status for _ in range(3)] == [500, 500, 500]
    hits = flaky.app.hits
    resp = raw_request(gw.port, "GET", "/svc/x")
    assert resp.status == 503
    assert json.loads(resp.body)["error"] == "upstream_unavailable"
    assert 1 <= int(resp.header("Retry-After")) <= 30
    assert flaky.app.hits == hits  # the upstream was not touched
    metrics = gw.client.get("/metrics").get_data(as_text=True)
    assert f'gateway_circuit_open{{service="svc",target="{flaky.url}"}} 1.0' in metrics


def test_success_resets_the_count(make_gateway, flaky, storage):
    gw = breaker_gateway(make_gateway, flaky.url, storage)
    raw_request(gw.port, "GET", "/svc/x")
    raw_request(gw.port, "GET", "/svc/x")
    flaky.app.failing = False
    assert raw_request(gw.port, "GET", "/svc/x").status == 200
    flaky.app.failing = True
    # two more failures do not open it: the count started over
    assert [raw_request(gw.port, "GET", "/svc/x").status for _ in range(2)] == [500, 500]
    assert raw_request(gw.port, "GET", "/svc/x").status == 500


@pytest.mark.fault
def test_one_probe_after_reset_then_closes(make_gateway, flaky, storage):
    clock = MovedClock()
    gw = breaker_gateway(make_gateway, flaky.url, storage, reset_after=30, clock=clock)
    for _ in range(3):
        raw_request(gw.port, "GET", "/svc/x")
    assert raw_request(gw.port, "GET", "/svc/x").status == 503
    clock.advance(29)
    assert raw_request(gw.port, "GET", "/svc/x").status == 503  # not yet
    clock.advance(1)
    flaky.app.failing = False
    flaky.app.delay = 0.5  # the probe is still running while the others arrive
    hits = flaky.app.hits
    # several clients at once: exactly one probe goes through
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(
        raw_request(gw.port, "GET", "/svc/x").status)) for _ in range(5)]
    for t in threads:
        t.start()
        time.sleep(0.02)
    for t in threads:
        t.join()
    assert flaky.app.hits - hits == 1
    assert sorted(results) == [200, 503, 503, 503, 503]
    flaky.app.delay = 0.0
    # the probe succeeded: closed again
    assert [raw_request(gw.port, "GET", "/svc/x").status for _ in range(3)] == [200, 200, 200]


@pytest.mark.fault
def test_failed_probe_reopens(make_gateway, flaky, storage):
    clock = MovedClock()
    gw = breaker_gateway(make_gateway, flaky.url, storage, reset_after=30, clock=clock)
    for _ in range(3):
        raw_request(gw.port, "GET", "/svc/x")
    clock.advance(30)
    assert raw_request(gw.port, "GET", "/svc/x").status == 500  # the probe, failing
    assert raw_request(gw.port, "GET", "/svc/x").status == 503  # open again at once


def test_connection_failures_count_too(make_gateway, storage):
    gw = breaker_gateway(make_gateway, f"http://127.0.0.1:{dead_port()}", storage, reset_after=30)
    assert [raw_request(gw.port, "GET", "/svc/x").status for _ in range(3)] == [502, 502, 502]
    assert raw_request(gw.port, "GET", "/svc/x").status == 503


def test_open_target_is_skipped_while_another_is_healthy(make_gateway, flaky, upstream, storage):
    gw = make_gateway({"storage": storage, "services": {"svc": {
        "upstream": [flaky.url, upstream.url], "retries": 0,
        "circuit_breaker": {"failures": 2, "reset_after": 30}}}})
    statuses = [raw_request(gw.port, "GET", "/svc/x").status for _ in range(4)]
    assert statuses.count(500) == 2  # the flaky target, twice, then its circuit opens
    hits = flaky.app.hits
    answers = [json.loads(raw_request(gw.port, "GET", "/svc/x").body)["upstream"] for _ in range(4)]
    assert answers == ["one"] * 4
    assert flaky.app.hits == hits


def test_breaker_shared_between_gateways_through_redis(make_gateway, flaky, redis_url):
    first = breaker_gateway(make_gateway, flaky.url, redis_url, reset_after=30)
    second = breaker_gateway(make_gateway, flaky.url, redis_url, reset_after=30)
    for _ in range(3):
        raw_request(first.port, "GET", "/svc/x")
    assert raw_request(second.port, "GET", "/svc/x").status == 503
