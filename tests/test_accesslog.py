"""One JSON access-log line per request, with no secrets in it."""

from __future__ import annotations

import json

import pytest

from gateway.config import hash_key
from gateway.telemetry import accesslog
from tests.conftest import raw_request

FIELDS = {"time", "request_id", "method", "path", "status", "duration_ms", "service",
          "consumer", "issuer", "upstream", "upstream_ms", "client_ip", "bytes_received",
          "bytes_sent", "cache", "trace_id"}


@pytest.fixture
def access_lines(monkeypatch):
    """The lines the access log writes, instead of stdout."""
    lines: list[str] = []
    monkeypatch.setattr(accesslog, "sink", lines.append)
    return lines


def wait_for(lines, count):
    import time
    deadline = time.monotonic() + 20  # a line is written as its answer closes
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
    assert entry["bytes_received"] == 0
    assert entry["duration_ms"] >= entry["upstream_ms"] > 0


def test_the_request_body_bytes_are_logged(make_gateway, upstream, access_lines):
    gw = make_gateway({"services": {"users": upstream.url}})
    raw_request(gw.port, "POST", "/users/echo", headers={"Content-Type": "text/plain"},
                body=b"x" * 1234)
    (entry,) = wait_for(access_lines, 1)
    assert entry["bytes_received"] == 1234


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


def test_consumer_and_cache_are_logged(make_gateway, upstream, access_lines):
    gw = make_gateway({"consumers": {"web": {"keys": [hash_key("web-key")]}},
                       "services": {"users": {"upstream": upstream.url, "auth": "api_key",
                                              "cache": {"ttl": 30}}}})
    # the answer is stored as the server finishes it, which may be after the client has
    # it all: the second request waits for the first one's line (written once it closed)
    raw_request(gw.port, "GET", "/users/1", headers={"X-API-Key": "web-key"})
    wait_for(access_lines, 1)
    raw_request(gw.port, "GET", "/users/1", headers={"X-API-Key": "web-key"})
    first, second = wait_for(access_lines, 2)
    assert (first["consumer"], first["cache"]) == ("web", "MISS")
    assert (second["consumer"], second["cache"]) == ("web", "HIT")
    assert first["trace_id"] is None  # no tracing configured


def test_the_text_format_says_the_same_in_one_readable_line(make_gateway, upstream, access_lines,
                                                          monkeypatch):
    monkeypatch.setenv("GATEWAY_LOG_FORMAT", "text")
    gw = make_gateway({"services": {"users": upstream.url}})
    raw_request(gw.port, "GET", "/users/1", headers={"X-Request-ID": "text-1"})
    import time
    deadline = time.monotonic() + 5
    while not access_lines and time.monotonic() < deadline:
        time.sleep(0.01)
    (line,) = access_lines
    assert line.split()[1:4] == ["GET", "/users/1", "200"]
    assert " service=users consumer=- " in line and " request_id=text-1 " in line
    assert f"upstream={upstream.url}" in line


def test_an_unknown_log_format_is_a_config_error(monkeypatch):
    from gateway.app import create_app
    from gateway.config import ConfigError
    monkeypatch.setenv("GATEWAY_LOG_FORMAT", "xml")
    with pytest.raises(ConfigError, match="GATEWAY_LOG_FORMAT: 'xml' is not one of json, text"):
        create_app({"services": {"users": "http://127.0.0.1:9"}})


def test_no_secret_reaches_any_log_line_under_gunicorn(gunicorn_gateway, upstream):
    """A key, a cookie, an Authorization header and a query token: in no line gunicorn
    writes (access log, error log, the console span exporter), whatever the answer."""
    import requests
    gw = gunicorn_gateway({"consumers": {"web": {"keys": [hash_key("keysecret")]}},
                           "tracing": {"exporter": "console"},
                           "services": {"users": {"upstream": upstream.url, "auth": "api_key"}}},
                          workers=1)
    secrets = {"X-API-Key": "keysecret", "Authorization": "Bearer tokensecret",
               "Cookie": "session=cookiesecret"}
    for path, headers in (("/users/1?token=querysecret", secrets),
                          ("/users/1", {**secrets, "X-API-Key": "wrongsecret"}),
                          ("/nowhere?token=querysecret", secrets)):
        requests.get(gw.url + path, headers=headers, timeout=10)
    lines = gw.access_lines(3)
    assert len(lines) == 3 and lines[0]["trace_id"]
    gw.process.terminate()  # flushes the span exporter
    gw.process.wait(timeout=20)
    log = gw.log()
    assert '"trace_id"' in log and '"name": "GET users"' in log  # spans were written
    for secret in ("keysecret", "tokensecret", "cookiesecret", "querysecret", "wrongsecret"):
        assert secret not in log, secret


def test_gateway_log_level_sets_the_gateway_messages_level(monkeypatch, tmp_path):
    import logging

    from gateway.app import load_app
    config = tmp_path / "gateway.yaml"
    config.write_text("services:\n  users: http://127.0.0.1:9\n")
    monkeypatch.setenv("GATEWAY_CONFIG", str(config))
    monkeypatch.setenv("GATEWAY_LOG_LEVEL", "warning")
    load_app()
    assert logging.getLogger("gateway.cache").getEffectiveLevel() == logging.WARNING
    monkeypatch.setenv("GATEWAY_LOG_LEVEL", "loud")
    with pytest.raises(SystemExit, match="GATEWAY_LOG_LEVEL: 'loud' is not one of debug"):
        load_app()
    logging.getLogger("gateway").setLevel(logging.NOTSET)
