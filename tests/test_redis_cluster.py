"""``storage: redis+cluster://…``: quotas, the response cache and breakers on a real Cluster."""

from __future__ import annotations

import requests

from tests.conftest import free_port

KEY = "cluster-key"


def test_a_quota_is_exact_across_gunicorn_workers(gunicorn_gateway, upstream, redis_cluster):
    gw = gunicorn_gateway({"storage": redis_cluster.url, "services": {"users": {
        "upstream": upstream.url, "rate_limit": "10/minute"}}}, workers=2)
    # a new connection each time: the requests spread over both workers
    statuses = [requests.get(f"{gw.url}/users/{i}", timeout=10,
                             headers={"Connection": "close"}).status_code for i in range(15)]
    assert statuses.count(200) == 10 and statuses.count(429) == 5, statuses


def test_lease_mode_works_on_a_cluster(make_gateway, upstream, redis_cluster):
    gw = make_gateway({"storage": redis_cluster.url, "quota": {"mode": "lease"},
                       "services": {"users": {"upstream": upstream.url, "rate_limit": "5/minute"}}})
    statuses = [requests.get(f"{gw.url}/users/x", timeout=10).status_code for _ in range(8)]
    assert statuses == [200] * 5 + [429] * 3


def test_a_cached_answer_is_shared_between_gateways(make_gateway, upstream, redis_cluster):
    config = {"storage": redis_cluster.url, "services": {"users": {
        "upstream": upstream.url, "cache": {"ttl": 30}}}}
    first, second = make_gateway(config), make_gateway(config)
    path = f"/users/cached-{free_port()}"
    assert requests.get(first.url + path, timeout=10).headers["X-Cache-Status"] == "MISS"
    again = requests.get(second.url + path, timeout=10)
    assert again.headers["X-Cache-Status"] == "HIT" and again.json()["upstream"] == "one"


def test_breaker_state_is_shared_between_gateways(make_gateway, redis_cluster):
    dead = f"http://127.0.0.1:{free_port()}"
    config = {"storage": redis_cluster.url, "services": {"gone": {
        "upstream": dead, "retries": 0, "circuit_breaker": {"failures": 2, "reset_after": 30}}}}
    first, second = make_gateway(config), make_gateway(config)
    assert [requests.get(f"{first.url}/gone/x", timeout=10).status_code for _ in range(2)] \
        == [502, 502]
    refused = requests.get(f"{second.url}/gone/x", timeout=10)
    assert refused.status_code == 503 and refused.json()["error"] == "upstream_unavailable"
