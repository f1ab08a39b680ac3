"""API keys: looked up by their hash in one directory, file keys and issued keys alike."""

from __future__ import annotations

import pytest
from flask import Flask, g

from gateway.config import parse_config
from gateway.errors import GatewayError
from gateway.keyring import ConsumerEntry, Directory, KeyEntry
from gateway.keyring.directory import digest
from gateway.keyring.issued import IssuedKeys
from gateway.policies.apikey import ApiKeyAuth
from gateway.state import RequestState
from gateway.testing import MovedClock

CONSUMERS = {f"c{i}": {"keys": [f"key-number-{i:04d}"]} for i in range(20)}


@pytest.fixture
def directory():
    config = parse_config({"consumers": CONSUMERS, "services": {"s": "http://127.0.0.1:9"}})
    return Directory(config.consumers, IssuedKeys("gw"), clock=MovedClock())


def attempt(directory: Directory, key: str, route: str = "s") -> tuple[str | None, str | None]:
    """(consumer or error code, key id or refusal reason)"""
    failures: list[str] = []
    auth = ApiKeyAuth(route, directory, on_failure=lambda route, reason: failures.append(reason))
    with Flask(__name__).test_request_context("/s/", headers={"X-API-Key": key}):
        g._gateway_state = RequestState("id", 0.0)
        try:
            auth.before()
        except GatewayError as refused:
            return refused.code, failures[0]
        return g._gateway_state.consumer, g._gateway_state.key_id


def test_a_known_key_names_its_consumer_and_an_unknown_one_is_refused(directory):
    assert attempt(directory, "key-number-0003") == ("c3", None)
    assert attempt(directory, "key-number-9999") == ("invalid_api_key", "invalid_api_key")


def test_an_issued_key_with_a_wrong_checksum_is_refused_before_any_lookup(directory):
    issued = IssuedKeys("gw")
    key = issued.issue()
    directory.replace(["p"], [ConsumerEntry("p", None, None)],
                      [(digest(key), KeyEntry("key_1", "p", None))])
    assert attempt(directory, key) == ("p", "key_1")
    tampered = key[:-1] + ("0" if key[-1] != "0" else "1")
    assert attempt(directory, tampered) == ("invalid_api_key", "bad_checksum")
    # the same characters under another prefix are no issued key: looked up, unknown
    assert attempt(directory, "xx" + tampered[2:]) == ("invalid_api_key", "invalid_api_key")


def test_an_expired_key_is_refused_the_moment_it_expires():
    clock = MovedClock(1_000.0)
    directory = Directory(clock=clock)
    directory.replace(["p"], [ConsumerEntry("p", None, None)],
                      [(digest("k"), KeyEntry("key_1", "p", 1_010.0))])
    clock.advance(1_009.9 - clock.time())
    assert attempt(directory, "k") == ("p", "key_1")
    clock.advance(1_010.0 - clock.time())
    assert attempt(directory, "k") == ("invalid_api_key", "invalid_api_key")


def test_a_replaced_consumer_keeps_exactly_the_keys_given_and_file_consumers_stay(directory):
    directory.replace(["p"], [ConsumerEntry("p", ["s"], "5/minute")],
                      [(digest("a"), KeyEntry("key_a", "p", None)),
                       (digest("b"), KeyEntry("key_b", "p", None))])
    assert attempt(directory, "a")[0] == attempt(directory, "b")[0] == "p"
    # b revoked: the database's view of p is a alone
    directory.replace(["p"], [ConsumerEntry("p", ["s"], "5/minute")],
                      [(digest("a"), KeyEntry("key_a", "p", None))])
    assert attempt(directory, "b")[0] == "invalid_api_key"
    assert attempt(directory, "a", route="other")[0] == "forbidden"   # its allow-list
    # p removed (and a file consumer's name, which the database never changes)
    directory.replace(["p", "c1"], [], [])
    assert attempt(directory, "a")[0] == "invalid_api_key"
    assert attempt(directory, "key-number-0001")[0] == "c1"
    assert directory.consumer("p") is None


def test_uses_of_database_keys_are_noted_for_the_follower_and_file_keys_are_not():
    clock = MovedClock(1_000.0)
    config = parse_config({"consumers": {"f": {"keys": ["file-key"]}},
                           "services": {"s": "http://127.0.0.1:9"}})
    directory = Directory(config.consumers, clock=clock)
    directory.replace(["p"], [ConsumerEntry("p", None, None)],
                      [(digest("k"), KeyEntry("key_1", "p", None))])
    attempt(directory, "file-key")
    attempt(directory, "k")
    assert directory.used == {"key_1": 1_000.0}
