"""API keys and consumers."""

from __future__ import annotations

import json

import pytest

from gateway.config import hash_key
from tests.conftest import raw_request

ALICE, BOB, CAROL = "alice-secret-key", "bob-secret-key", "carol-secret-key"


@pytest.fixture
def gw(make_gateway, upstream):
    return make_gateway({
        "consumers": {
            "alice": {"keys": [hash_key(ALICE)], "services": ["users", "orders"]},
            "bob": {"keys": [hash_key(BOB)], "services": ["orders"]},
            "carol": {"keys": [CAROL]},  # plain keys are accepted (check warns)
        },
        "services": {
            "users": {"upstream": upstream.url, "auth": "api_key"},
            "orders": {"upstream": upstream.url, "auth": "api_key"},
            "public": {"upstream": upstream.url},
        },
        "blueprints": [{"blueprint": "tests.sample_blueprints:bp", "auth": "api_key"}],
    })


def body(resp) -> dict:
    return json.loads(resp.body)


def test_missing_key_is_401_with_challenge(gw):
    resp = raw_request(gw.port, "GET", "/users/1")
    assert resp.status == 401
    assert body(resp)["error"] == "missing_api_key"
    assert resp.header("WWW-Authenticate").startswith("ApiKey")


@pytest.mark.parametrize("key", ["wrong", ALICE + "x", ALICE[:-1], hash_key(ALICE)])
def test_unknown_key_is_401_invalid(gw, key):
    resp = raw_request(gw.port, "GET", "/users/1", headers={"X-API-Key": key})
    assert resp.status == 401
    assert body(resp)["error"] == "invalid_api_key"
    assert resp.header("WWW-Authenticate")


def test_valid_key_reaches_upstream_as_consumer_without_the_key(gw):
    resp = raw_request(gw.port, "GET", "/users/1",
                       headers={"X-API-Key": ALICE, "X-Consumer": "mallory"})
    assert resp.status == 200
    headers = body(resp)["headers"]
    assert headers["x-consumer"] == "alice"
    assert "x-api-key" not in headers


def test_plain_key_in_config_works(gw):
    resp = raw_request(gw.port, "GET", "/users/1", headers={"X-API-Key": CAROL})
    assert body(resp)["headers"]["x-consumer"] == "carol"


def test_consumer_not_allowed_on_service_is_403(gw, upstream):
    hits = upstream.app.hits
    resp = raw_request(gw.port, "GET", "/users/1", headers={"X-API-Key": BOB})
    assert resp.status == 403
    assert body(resp)["error"] == "forbidden"
    assert upstream.app.hits == hits
    assert raw_request(gw.port, "GET", "/orders/1", headers={"X-API-Key": BOB}).status == 200


def test_spoofed_consumer_header_is_removed_without_auth(gw):
    resp = raw_request(gw.port, "GET", "/public/1", headers={"X-Consumer": "admin",
                                                             "X-API-Key": "passes-through"})
    headers = body(resp)["headers"]
    assert "x-consumer" not in headers
    # a service without auth leaves the client's own X-API-Key alone
    assert headers["x-api-key"] == "passes-through"


def test_hand_written_blueprint_is_protected_too(gw):
    assert raw_request(gw.port, "GET", "/sample/hello").status == 401
    resp = raw_request(gw.port, "GET", "/sample/hello", headers={"X-API-Key": CAROL})
    assert resp.status == 200


def test_no_plain_key_is_kept_in_memory(gw):
    config = gw.app.extensions["gateway"].config
    text = repr(config)
    for key in (ALICE, BOB, CAROL):
        assert key not in text
    assert hash_key(CAROL) in config.consumers["carol"].key_hashes


def test_unknown_service_in_allow_list_stops_the_start(make_gateway, upstream):
    from gateway.config import ConfigError
    with pytest.raises(ConfigError, match=r"consumers.alice.services: 'ordrs' is neither"):
        make_gateway({"consumers": {"alice": {"keys": [ALICE], "services": ["ordrs"]}},
                      "services": {"orders": upstream.url}})


def test_every_refused_key_is_counted_by_reason(gw):
    from prometheus_client import REGISTRY

    def failures(reason: str, service: str = "orders") -> float:
        return REGISTRY.get_sample_value("gateway_auth_failures_total",
                                         {"service": service, "reason": reason}) or 0.0
    before = {r: failures(r) for r in ("missing_api_key", "invalid_api_key")}
    forbidden_before = failures("forbidden", "users")
    assert raw_request(gw.port, "GET", "/orders/1").status == 401
    assert raw_request(gw.port, "GET", "/orders/1", headers={"X-API-Key": "nope"}).status == 401
    assert raw_request(gw.port, "GET", "/orders/1", headers={"X-API-Key": "nope"}).status == 401
    assert raw_request(gw.port, "GET", "/users/1", headers={"X-API-Key": BOB}).status == 403
    assert raw_request(gw.port, "GET", "/orders/1", headers={"X-API-Key": BOB}).status == 200
    assert failures("missing_api_key") == before["missing_api_key"] + 1
    assert failures("invalid_api_key") == before["invalid_api_key"] + 2
    assert failures("forbidden", "users") == forbidden_before + 1
