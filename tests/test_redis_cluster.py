"""``storage: redis+cluster://…``: quotas, the response cache and breakers on a real Cluster."""

from __future__ import annotations

import requests

from tests.conftest import dead_port, free_port

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
    dead = f"http://127.0.0.1:{dead_port()}"
    config = {"storage": redis_cluster.url, "services": {"gone": {
        "upstream": dead, "retries": 0, "circuit_breaker": {"failures": 2, "reset_after": 30}}}}
    first, second = make_gateway(config), make_gateway(config)
    assert [requests.get(f"{first.url}/gone/x", timeout=10).status_code for _ in range(2)] \
        == [502, 502]
    refused = requests.get(f"{second.url}/gone/x", timeout=10)
    assert refused.status_code == 503 and refused.json()["error"] == "upstream_unavailable"


def test_a_cluster_down_at_start_is_used_once_it_answers(make_gateway, upstream, tmp_path):
    """The gateway starts without its Cluster, fails open, and counts in the Cluster
    within 10 s of it answering."""
    import time

    from tests.conftest import RedisClusterServers

    cluster = RedisClusterServers(tmp_path)
    gw = make_gateway({"storage": cluster.url, "services": {"users": {
        "upstream": upstream.url, "rate_limit": "3/minute", "cache": {"ttl": 30},
        "circuit_breaker": {"failures": 3}}}})
    assert [requests.get(f"{gw.url}/users/{i}", timeout=10).status_code
            for i in range(5)] == [200] * 5                       # failing open
    assert requests.get(f"{gw.url}/readyz", timeout=10).json()["storage"] == "unreachable"
    cluster.start()
    try:
        answered = time.monotonic()
        statuses: list[int] = []
        while time.monotonic() - answered < 10 and 429 not in statuses:
            statuses.append(requests.get(f"{gw.url}/users/x", timeout=10).status_code)
            time.sleep(0.2)
        assert 429 in statuses, "the Cluster was not used within 10 s of it answering"
        assert statuses[-4:] == [200, 200, 200, 429]
    finally:
        cluster.stop()
