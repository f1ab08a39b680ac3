"""One JSON access-log line per request, with no secrets in it."""

from __future__ import annotations

import json

import pytest

from gateway.telemetry import accesslog
from tests.conftest import raw_request

FIELDS = {"time", "request_id", "method", "path", "status", "duration_ms", "service",
          "upstream", "upstream_ms", "client_ip", "bytes_sent"}


@pytest.fixture
def access_lines(monkeypatch):
    """The lines the access log writes, instead of stdout."""
    lines: list[str] = []
    monkeypatch.setattr(accesslog, "sink", lines.append)
    return lines


def wait_for(lines, count):
    import time
    deadline = time.monotonic() + 5
    while len(lines) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return [json.loads(line) for line in lines]


def test_proxied_request_is_logged_with_every_field(make_gateway, upstream, access_lines):
    gw = make_gateway({"services": {"users": upstream.url}})
    resp = raw_request(gw.port, "GET", "/users/cookies?token=s3cret",
                       headers={"X-Request-ID": "log-test-1"})
    (entry,) = wait_for(access_lines, 1)
    assert set(entry) == FIELDS
    assert entry["request_id"] == "log-test-1"
    assert (entry["method"], entry["path"], entry["status"]) == ("GET", "/users/cookies", 200)
    assert entry["service"] == "users" and entry["upstream"] == upstream.url
    assert entry["client_ip"] == "127.0.0.1"
    assert entry["bytes_sent"] == len(resp.body) == 2
    assert entry["duration_ms"] >= entry["upstream_ms"] > 0


def test_gateway_errors_are_logged_too(make_gateway, upstream, access_lines):
    gw = make_gateway({"services": {"users": upstream.url}})
    resp = raw_request(gw.port, "GET", "/nowhere")
    (entry,) = wait_for(access_lines, 1)
    assert entry["status"] == 404 and entry["service"] is None
    assert entry["bytes_sent"] == len(resp.body)


def test_secrets_never_reach_the_log(make_gateway, upstream, access_lines):
    gw = make_gateway({"services": {"users": upstream.url}})
    raw_request(gw.port, "GET", "/users/1?api_key=querysecret", headers={
        "X-API-Key": "keysecret", "Authorization": "Bearer tokensecret",
        "Cookie": "session=cookiesecret"})
    (line,) = access_lines if wait_for(access_lines, 1) else []
    for secret in ("querysecret", "keysecret", "tokensecret", "cookiesecret"):
        assert secret not in line
