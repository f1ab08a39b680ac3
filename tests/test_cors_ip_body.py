"""CORS preflights and headers, IP allow/deny rules, body size limits."""

from __future__ import annotations

import json

import pytest

from tests.conftest import raw_request

ORIGIN = "https://app.example.com"


@pytest.fixture
def gw(make_gateway, upstream):
    return make_gateway({
        "consumers": {"alice": {"keys": ["k"]}},
        "services": {
            "users": {"upstream": upstream.url, "auth": "api_key", "methods": ["GET", "POST"],
                      "cors": {"origins": [ORIGIN], "credentials": True}},
            "open": {"upstream": upstream.url, "cors": {"origins": ["*"]}},
            "internal": {"upstream": upstream.url, "allow_ips": ["10.0.0.0/8", "127.0.0.0/8"],
                         "deny_ips": ["127.0.0.2/32"]},
            "outside": {"upstream": upstream.url, "allow_ips": ["10.0.0.0/8"]},
            "blocked": {"upstream": upstream.url, "deny_ips": ["127.0.0.0/8"]},
            "small": {"upstream": upstream.url, "max_body_bytes": 1000},
        },
    })


def preflight(gw, path, origin=ORIGIN, method="POST"):
    return raw_request(gw.port, "OPTIONS", path, headers={
        "Origin": origin, "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "X-API-Key, Content-Type"})


def test_preflight_is_answered_without_key_or_upstream(gw, upstream):
    hits = upstream.app.hits
    resp = preflight(gw, "/users/1")
    assert resp.status == 204
    assert resp.header("Access-Control-Allow-Origin") == ORIGIN
    assert resp.header("Access-Control-Allow-Credentials") == "true"
    assert set(resp.header("Access-Control-Allow-Methods").split(", ")) == {"GET", "POST"}
    assert resp.header("Access-Control-Allow-Headers") == "X-API-Key, Content-Type"
    assert resp.header("Access-Control-Max-Age") == "600"
    assert "Origin" in resp.header("Vary")
    assert upstream.app.hits == hits


def test_disallowed_origin_gets_no_cors_headers(gw):
    resp = preflight(gw, "/users/1", origin="https://evil.example")
    assert resp.status == 204
    assert not [k for k, _ in resp.headers if k.lower().startswith("access-control-")]
    resp = raw_request(gw.port, "GET", "/users/1", headers={"Origin": "https://evil.example",
                                                            "X-API-Key": "k"})
    assert resp.status == 200
    assert resp.header("Access-Control-Allow-Origin") is None
    assert "Origin" in resp.header("Vary")


def test_actual_request_gets_cors_headers_also_on_errors(gw):
    ok = raw_request(gw.port, "GET", "/users/1", headers={"Origin": ORIGIN, "X-API-Key": "k"})
    assert ok.header("Access-Control-Allow-Origin") == ORIGIN
    assert "X-Request-ID" in ok.header("Access-Control-Expose-Headers")
    denied = raw_request(gw.port, "GET", "/users/1", headers={"Origin": ORIGIN})
    assert denied.status == 401
    assert denied.header("Access-Control-Allow-Origin") == ORIGIN  # the page can read the 401


def test_wildcard_origin(gw):
    resp = raw_request(gw.port, "GET", "/open/1", headers={"Origin": "https://any.example"})
    assert resp.header("Access-Control-Allow-Origin") == "*"


def test_options_without_preflight_headers_still_405_when_not_allowed(gw):
    resp = raw_request(gw.port, "OPTIONS", "/users/1", headers={"X-API-Key": "k"})
    assert resp.status == 405


@pytest.mark.parametrize("path,status", [
    ("/internal/1", 200),   # 127.0.0.1 is in an allowed range
    ("/outside/1", 403),    # not in the allow list
    ("/blocked/1", 403),    # denied
])
def test_ip_rules(gw, path, status):
    resp = raw_request(gw.port, "GET", path)
    assert resp.status == status
    if status == 403:
        assert json.loads(resp.body)["error"] == "ip_forbidden"


def test_deny_wins_and_trusted_proxy_address_is_used(make_gateway, upstream):
    gw = make_gateway({"trusted_proxies": 1, "services": {"internal": {
        "upstream": upstream.url, "allow_ips": ["203.0.113.0/24"], "deny_ips": ["203.0.113.66"]}}})
    ok = raw_request(gw.port, "GET", "/internal/1", headers={"X-Forwarded-For": "203.0.113.5"})
    assert ok.status == 200
    denied = raw_request(gw.port, "GET", "/internal/1", headers={"X-Forwarded-For": "203.0.113.66"})
    assert denied.status == 403
    # without the trusted hop the real peer (127.0.0.1) is judged
    assert raw_request(gw.port, "GET", "/internal/1").status == 403


def test_body_over_limit_by_content_length_is_413_before_upstream(gw, upstream):
    hits = upstream.app.hits
    resp = raw_request(gw.port, "POST", "/small/upload", body=b"x" * 1001)
    assert resp.status == 413
    assert json.loads(resp.body)["error"] == "body_too_large"
    assert upstream.app.hits == hits


def test_body_at_limit_passes(gw):
    resp = raw_request(gw.port, "POST", "/small/upload", body=b"x" * 1000)
    assert json.loads(resp.body)["body_length"] == 1000


def test_chunked_body_over_limit_is_cut_off_with_413(gw):
    resp = raw_request(gw.port, "POST", "/small/upload", body=[b"x" * 600, b"y" * 600],
                       encode_chunked=True)
    assert resp.status == 413
    assert json.loads(resp.body)["error"] == "body_too_large"


def test_chunked_body_under_limit_passes(gw):
    resp = raw_request(gw.port, "POST", "/small/upload", body=[b"x" * 400, b"y" * 400],
                       encode_chunked=True)
    assert json.loads(resp.body)["body_length"] == 800
