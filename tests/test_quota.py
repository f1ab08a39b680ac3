"""Quotas: 429 with Retry-After, RateLimit-* headers, shared exactly through Redis."""

from __future__ import annotations

import json
import threading

import pytest
import requests

from tests.conftest import raw_request


def limited_gateway(make_gateway, upstream, storage, **extra):
    return make_gateway({
        "storage": storage,
        "consumers": {"alice": {"keys": ["alice-key"], "rate_limit": "4/minute"},
                      "bob": {"keys": ["bob-key"]}},
        "services": {
            "users": {"upstream": upstream.url, "rate_limit": "3/minute"},
            "orders": {"upstream": upstream.url, "auth": "api_key", "rate_limit": "10/minute"},
            "multi": {"upstream": upstream.url, "rate_limit": "2/second;5/hour"},
            "free": {"upstream": upstream.url},
        }, **extra})


def test_over_quota_is_429_with_retry_after(make_gateway, upstream, storage):
    gw = limited_gateway(make_gateway, upstream, storage)
    statuses = [raw_request(gw.port, "GET", f"/users/{i}") for i in range(5)]
    assert [r.status for r in statuses] == [200, 200, 200, 429, 429]
    refused = statuses[3]
    assert json.loads(refused.body)["error"] == "rate_limited"
    assert 1 <= int(refused.header("Retry-After")) <= 60


def test_a_malformed_path_costs_no_quota_and_no_cache_lookup(make_gateway, upstream):
    gw = make_gateway({"services": {"users": {"upstream": upstream.url, "rate_limit": "2/minute",
                                              "cache": {"ttl": 30}}}})
    for target in ("/users/../admin", "/users/%2e%2e/admin", "/users//x", "/users/./x"):
        refused = raw_request(gw.port, "GET", target)
        assert refused.status == 400 and json.loads(refused.body)["error"] == "bad_path"
        assert refused.header("RateLimit-Remaining") is None
        assert refused.header("X-Cache-Status") in (None, "BYPASS")
    answers = [raw_request(gw.port, "GET", f"/users/{i}") for i in range(3)]
    assert [a.status for a in answers] == [200, 200, 429]
    assert answers[0].header("RateLimit-Remaining") == "1"


def test_every_response_carries_ratelimit_headers(make_gateway, upstream, storage):
    gw = limited_gateway(make_gateway, upstream, storage)
    seen = []
    for _ in range(4):
        resp = raw_request(gw.port, "GET", "/users/1")
        seen.append((resp.header("RateLimit-Limit"), resp.header("RateLimit-Remaining")))
        assert 0 < int(resp.header("RateLimit-Reset")) <= 60
    assert seen == [("3", "2"), ("3", "1"), ("3", "0"), ("3", "0")]
    # a service without a quota carries none
    assert raw_request(gw.port, "GET", "/free/1").header("RateLimit-Limit") is None


def test_headers_name_the_tightest_window(make_gateway, upstream):
    gw = limited_gateway(make_gateway, upstream, "memory://")
    first = raw_request(gw.port, "GET", "/multi/1")
    # 2/second has 1 left, 5/hour has 4 left: the second is not the tighter one
    assert (first.header("RateLimit-Limit"), first.header("RateLimit-Remaining")) == ("2", "1")
    assert int(first.header("RateLimit-Reset")) <= 1


def test_quota_counts_per_consumer(make_gateway, upstream, storage):
    gw = limited_gateway(make_gateway, upstream, storage)
    # alice's own 4/minute is tighter than the service's 10/minute
    alice = [raw_request(gw.port, "GET", "/orders/1", headers={"X-API-Key": "alice-key"}).status
             for _ in range(5)]
    assert alice == [200, 200, 200, 200, 429]
    bob = raw_request(gw.port, "GET", "/orders/1", headers={"X-API-Key": "bob-key"})
    assert bob.status == 200 and bob.header("RateLimit-Remaining") == "9"


def test_consumer_limit_spans_services(make_gateway, upstream):
    gw = make_gateway({
        "consumers": {"alice": {"keys": ["alice-key"], "rate_limit": "3/minute"}},
        "services": {"a": {"upstream": upstream.url, "auth": "api_key"},
                     "b": {"upstream": upstream.url, "auth": "api_key"}}})
    key = {"X-API-Key": "alice-key"}
    statuses = [raw_request(gw.port, "GET", path, headers=key).status
                for path in ("/a/1", "/b/1", "/a/2", "/b/2")]
    assert statuses == [200, 200, 200, 429]


def test_each_consumer_meets_its_own_limit_on_a_shared_route(make_gateway, upstream):
    # which limits apply is worked out once per route and consumer (not per
    # request): interleaved consumers must still each get their own
    gw = make_gateway({
        "consumers": {"carol": {"keys": ["carol-key"], "rate_limit": "2/minute"},
                      "dave": {"keys": ["dave-key"], "rate_limit": "4/minute"},
                      "erin": {"keys": ["erin-key"]}},
        "services": {"a": {"upstream": upstream.url, "auth": "api_key"}}})
    seen: dict[str, list] = {"carol": [], "dave": [], "erin": []}
    for _ in range(5):
        for name in seen:
            answer = raw_request(gw.port, "GET", "/a/1", headers={"X-API-Key": f"{name}-key"})
            seen[name].append((answer.status, answer.header("RateLimit-Limit")))
    assert seen["carol"] == [(200, "2")] * 2 + [(429, "2")] * 3
    assert seen["dave"] == [(200, "4")] * 4 + [(429, "4")]
    assert seen["erin"] == [(200, None)] * 5


def test_quota_is_per_client_ip_without_auth(make_gateway, upstream):
    gw = make_gateway({"trusted_proxies": 1, "services": {"users": {
        "upstream": upstream.url, "rate_limit": "1/minute"}}})
    one = {"X-Forwarded-For": "203.0.113.1"}
    two = {"X-Forwarded-For": "203.0.113.2"}
    assert raw_request(gw.port, "GET", "/users/1", headers=one).status == 200
    assert raw_request(gw.port, "GET", "/users/1", headers=one).status == 429
    assert raw_request(gw.port, "GET", "/users/1", headers=two).status == 200


def test_parallel_requests_are_counted_exactly(make_gateway, upstream, redis_url):
    gw = make_gateway({"storage": redis_url, "services": {"users": {
        "upstream": upstream.url, "rate_limit": "30/minute"}}})
    statuses: list[int] = []

    def burst():
        with requests.Session() as client:
            for _ in range(10):
                statuses.append(client.get(gw.url + "/users/1").status_code)
    threads = [threading.Thread(target=burst) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses.count(200) == 30 and statuses.count(429) == 10


@pytest.mark.parametrize("strategy", ["moving-window", "sliding-window-counter"])
def test_other_strategies(make_gateway, upstream, redis_url, strategy):
    gw = make_gateway({"storage": redis_url, "rate_limit_strategy": strategy,
                       "services": {"users": {"upstream": upstream.url, "rate_limit": "2/minute"}}})
    assert [raw_request(gw.port, "GET", "/users/1").status for _ in range(3)] == [200, 200, 429]


@pytest.mark.fault
def test_storage_down_allow_fails_open_and_recovers(make_gateway, upstream, private_redis,
                                                    caplog):
    gw = make_gateway({"storage": private_redis.url, "on_storage_error": "allow",
                       "services": {"users": {"upstream": upstream.url, "rate_limit": "2/minute"}}})
    assert raw_request(gw.port, "GET", "/users/1").status == 200
    private_redis.stop()
    for _ in range(4):  # more than the quota: the store is down, requests flow
        assert raw_request(gw.port, "GET", "/users/1").status == 200
    assert "quota storage unreachable" in caplog.text
    metrics = gw.client.get("/metrics").get_data(as_text=True)
    assert 'gateway_storage_errors_total{component="quota"}' in metrics
    private_redis.start()  # an empty store again: counting starts over
    statuses = [raw_request(gw.port, "GET", "/users/1").status for _ in range(3)]
    assert statuses == [200, 200, 429]


@pytest.mark.fault
def test_storage_down_deny_is_503_and_recovers(make_gateway, upstream, private_redis):
    gw = make_gateway({"storage": private_redis.url, "on_storage_error": "deny",
                       "services": {"users": {"upstream": upstream.url, "rate_limit": "5/minute"}}})
    assert raw_request(gw.port, "GET", "/users/1").status == 200
    private_redis.stop()
    resp = raw_request(gw.port, "GET", "/users/1")
    assert resp.status == 503
    assert json.loads(resp.body)["error"] == "storage_unavailable"
    assert resp.header("Retry-After")
    private_redis.start()
    assert raw_request(gw.port, "GET", "/users/1").status == 200


def test_quota_is_exact_across_workers_and_processes(gunicorn_gateway, upstream, redis_url):
    """Two gunicorn processes of two workers each share one Redis: N+k requests, k 429s."""
    config = {"storage": redis_url, "services": {"users": {
        "upstream": upstream.url, "rate_limit": "40/minute"}}}
    gateways = [gunicorn_gateway(config, workers=2, connections=4) for _ in range(2)]
    statuses: list[int] = []

    def burst(url):
        for _ in range(13):
            # a new connection each time, so gunicorn spreads them over its workers
            statuses.append(requests.get(url + "/users/1", headers={"Connection": "close"}).status_code)
    threads = [threading.Thread(target=burst, args=(gw.url,)) for gw in gateways for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(statuses) == 52
    assert statuses.count(200) == 40 and statuses.count(429) == 12
    pids = {line for gw in gateways for line in gw.log().splitlines() if "Booting worker" in line}
    assert len(pids) == 4


def test_hand_written_blueprint_gets_quota_and_cache(make_gateway, upstream):
    gw = make_gateway({"services": {"users": upstream.url}, "blueprints": [
        {"blueprint": "tests.sample_blueprints:bp", "rate_limit": "3/minute", "cache": {"ttl": 30},
         "cors": {"origins": ["https://app.example.com"]}}]})
    first = raw_request(gw.port, "GET", "/sample/hello", headers={"Origin": "https://app.example.com"})
    assert first.status == 200
    assert first.header("RateLimit-Limit") == "3" and first.header("RateLimit-Remaining") == "2"
    assert first.header("X-Cache-Status") == "MISS"
    assert first.header("Access-Control-Allow-Origin") == "https://app.example.com"
    second = raw_request(gw.port, "GET", "/sample/hello")
    assert second.header("X-Cache-Status") == "HIT"  # a hit still counts against the quota
    assert [raw_request(gw.port, "GET", "/sample/hello").status for _ in range(2)] == [200, 429]


def test_a_quota_costs_one_redis_round_trip_per_request(make_gateway, upstream, redis_url):
    """The count and the window's reset come back from one call; the headers use them."""
    import redis
    gw = make_gateway({"storage": redis_url,
                       "services": {"users": {"upstream": upstream.url, "rate_limit": "50/minute"}}})
    raw_request(gw.port, "GET", "/users/1")  # loads the script
    client = redis.Redis.from_url(redis_url)
    client.config_resetstat()
    seen = [raw_request(gw.port, "GET", "/users/1") for _ in range(5)]
    stats = client.info("commandstats")
    calls = {name.removeprefix("cmdstat_"): s["calls"] for name, s in stats.items()}
    # one EVALSHA a request; INCRBY and PTTL run inside it, on the server
    assert calls.pop("evalsha") == 5, calls
    assert set(calls) <= {"incrby", "pttl", "expire", "config|resetstat", "info"}, calls
    assert [r.header("RateLimit-Remaining") for r in seen] == ["48", "47", "46", "45", "44"]
    assert all(0 < int(r.header("RateLimit-Reset")) <= 60 for r in seen)
