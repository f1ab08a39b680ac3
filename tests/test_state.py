"""One request state: the access log, metrics and the upstream agree on what a request was."""

from __future__ import annotations

import json
import re
import time

import pytest

from gateway.telemetry import accesslog
from tests.conftest import dead_port, raw_request

KEY = "state-test-key"


@pytest.fixture
def access_lines(monkeypatch):
    lines: list[str] = []
    monkeypatch.setattr(accesslog, "sink", lines.append)

    def entries(count: int) -> list[dict]:
        deadline = time.monotonic() + 5
        while len(lines) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return [json.loads(line) for line in lines]
    return entries


def metric(text: str, service: str, status: int) -> float:
    match = re.search(rf'^gateway_requests_total{{method="\w+",service="{service}",'
                      rf'status="{status}"}} (\S+)$', text, re.M)
    return float(match.group(1)) if match else 0.0


def test_answers_the_gateway_gives_itself_are_logged_and_counted_under_their_route(
        make_gateway, upstream, access_lines):
    gw = make_gateway({
        "consumers": {"c": {"keys": [KEY]}},
        "services": {"st1": {"upstream": upstream.url, "auth": "api_key", "methods": ["GET"],
                             "cache": {"ttl": 30}}},
        "blueprints": ["tests.sample_blueprints:bp"]})
    before = raw_request(gw.port, "GET", "/metrics").body.decode()
    answers = [raw_request(gw.port, "GET", "/st1/x"),                          # 401
               raw_request(gw.port, "PUT", "/st1/x", headers={"X-API-Key": KEY}),  # 405
               raw_request(gw.port, "GET", "/st1/x", headers={"X-API-Key": KEY}),  # MISS
               raw_request(gw.port, "GET", "/st1/x", headers={"X-API-Key": KEY}),  # HIT
               raw_request(gw.port, "GET", "/sample/hello"),
               raw_request(gw.port, "GET", "/nowhere")]
    assert [answer.status for answer in answers] == [401, 405, 200, 200, 200, 404]
    # a line is written when its answer is closed, which may be after the client has read
    # it and sent the next request: match lines to requests by their id, not by arrival
    by_id = {e["request_id"]: e for e in access_lines(7)}
    entries = [by_id[answer.header("X-Request-ID")] for answer in answers]
    assert [(e["status"], e["service"]) for e in entries] == [
        (401, "st1"), (405, "st1"), (200, "st1"), (200, "st1"), (200, "sample"), (404, None)]
    assert entries[2]["upstream"] == upstream.url and entries[3]["upstream"] is None
    after = raw_request(gw.port, "GET", "/metrics").body.decode()
    for service, status, count in [("st1", 401, 1), ("st1", 405, 1), ("st1", 200, 2),
                                   ("sample", 200, 1), ("none", 404, 1)]:
        assert metric(after, service, status) - metric(before, service, status) == count, \
            (service, status)


def test_metrics_content_type_names_its_charset_once(make_gateway, upstream):
    gw = make_gateway({"services": {"st2": upstream.url}})
    content_type = raw_request(gw.port, "GET", "/metrics").header("Content-Type")
    assert content_type.count("charset") == 1, content_type


def test_blueprint_calls_take_the_proxy_path(make_gateway, upstream, access_lines):
    """Failover past a dead target, the request id forwarded, the call on the log line."""
    dead = f"http://127.0.0.1:{dead_port()}"
    gw = make_gateway({"services": {"users": {"upstream": [dead, upstream.url]}},
                       "blueprints": ["tests.sample_blueprints:calls"]})
    for _ in range(2):  # round-robin: one of the two starts at the dead target
        resp = raw_request(gw.port, "GET", "/calls/echo?q=a%20b",
                           headers={"X-Request-ID": "call-test-1"})
        assert resp.status == 200, resp.body
        answer = json.loads(resp.body)
        assert answer["status"] == 200
        assert answer["upstream"]["raw_uri"] == "/users/echo?q=a+b"
        assert answer["upstream"]["headers"]["x-request-id"] == "call-test-1"
    entries = access_lines(2)
    assert {e["service"] for e in entries} == {"calls"}
    assert {e["upstream"] for e in entries} == {upstream.url}


def test_blueprint_call_to_a_dead_service_is_a_502_labelled_connect(make_gateway, access_lines):
    gw = make_gateway({"services": {"users": {"upstream": f"http://127.0.0.1:{dead_port()}",
                                              "retries": 0}},
                       "blueprints": ["tests.sample_blueprints:calls"]})
    resp = raw_request(gw.port, "GET", "/calls/echo")
    assert resp.status == 502 and json.loads(resp.body)["error"] == "bad_gateway"
    (entry,) = access_lines(1)
    assert entry["service"] == "calls" and entry["upstream"].startswith("http://127.0.0.1:")


def test_upstream_call_outside_a_request_carries_nothing_extra(make_gateway, upstream):
    """A script or thread may call a service too; only the request's own calls carry its id."""
    gw = make_gateway({"services": {"users": upstream.url}})
    answer = gw.app.extensions["gateway"].upstreams["users"].call("GET", "/users/echo")
    assert answer.status_code == 200
    assert "x-request-id" not in answer.json()["headers"]
