"""API keys: hashed before comparing, every stored hash compared (nothing learnt from timing)."""

from __future__ import annotations

import hmac

import pytest
from flask import Flask, g

from gateway.config import parse_config
from gateway.errors import GatewayError
from gateway.policies import apikey
from gateway.policies.apikey import ApiKeyAuth
from gateway.state import RequestState

CONSUMERS = {f"c{i}": {"keys": [f"key-number-{i:04d}"]} for i in range(20)}


@pytest.fixture
def auth():
    config = parse_config({"consumers": CONSUMERS, "services": {"s": "http://127.0.0.1:9"}})
    return ApiKeyAuth("s", config.consumers)


def attempt(auth: ApiKeyAuth, key: str) -> str | None:
    with Flask(__name__).test_request_context("/s/", headers={"X-API-Key": key}):
        g._gateway_state = RequestState("id", 0.0)
        try:
            auth.before()
        except GatewayError as refused:
            return refused.code
        return g._gateway_state.consumer


@pytest.mark.parametrize("key", ["k", "key-number-000X", "k" * 400, "key-number-0003"])
def test_every_stored_hash_is_compared_on_digests_of_one_length(auth, key, monkeypatch):
    compared: list[tuple[int, int]] = []
    compare = hmac.compare_digest

    def spy(a, b):
        compared.append((len(a), len(b)))
        return compare(a, b)
    monkeypatch.setattr(apikey.hmac, "compare_digest", spy)
    attempt(auth, key)
    assert len(compared) == 20                      # no early exit on a match
    assert set(compared) == {(len(auth.keys[0][0]),) * 2}   # the key's length never shows


def test_a_known_key_names_its_consumer_and_an_unknown_one_is_refused(auth):
    assert attempt(auth, "key-number-0003") == "c3"
    assert attempt(auth, "key-number-9999") == "invalid_api_key"
