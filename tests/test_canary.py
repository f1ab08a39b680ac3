"""``canary``: a weighted, sticky share of a service's traffic to other targets."""

from __future__ import annotations

import json
import threading

import pytest
import requests

from gateway.config import ConfigError, parse_config


def canary_service(primary, canary, **settings) -> dict:
    return {"upstream": primary.url,
            "canary": {"upstream": canary.url, "weight": 20, "sticky": "header:X-User",
                       **settings}}


def test_a_fifth_of_users_meet_the_canary_and_always_the_same_branch(gunicorn_gateway, upstream,
                                                                       upstream2):
    gw = gunicorn_gateway({"services": {"orders": canary_service(upstream, upstream2)}},
                          workers=2)
    seen: dict[str, set] = {}
    lock = threading.Lock()

    def ask(users: range) -> None:
        with requests.Session() as session:  # a connection of its own: either worker
            for n in users:
                answer = session.get(gw.url + "/orders/echo", headers={"X-User": f"user-{n}"},
                                     timeout=10)
                assert answer.status_code == 200
                body = answer.json()
                assert "x-canary" not in body["headers"]
                with lock:
                    seen.setdefault(f"user-{n}", set()).add(body["upstream"])
    # 2,000 users, then the first 300 again from other connections (other workers)
    batches = [range(i, 2000, 4) for i in range(4)] + [range(i, 300, 3) for i in range(3)]
    threads = [threading.Thread(target=ask, args=(batch,)) for batch in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(seen) == 2000
    assert all(len(branches) == 1 for branches in seen.values()), "a user met both branches"
    on_canary = sum(branches == {"two"} for branches in seen.values())
    assert 300 <= on_canary <= 500, on_canary  # 15–25 % of 2,000
    # the header forces a branch, whoever asks, and never goes upstream
    for forced, name in (("always", "two"), ("never", "one"), ("ALWAYS", "two")):
        for n in range(5):
            body = requests.get(gw.url + "/orders/echo", timeout=10, headers={
                "X-User": f"user-{n}", "X-Canary": forced}).json()
            assert body["upstream"] == name and "x-canary" not in body["headers"]
    lines = [line for line in gw.access_lines(2315) if line.get("service") == "orders"]
    assert {line["branch"] for line in lines} == {"primary", "canary"}
    metrics = requests.get(gw.url + "/metrics", timeout=10).text
    assert 'gateway_branch_requests_total{branch="canary",service="orders"}' in metrics


def test_the_cache_keeps_each_branch_apart(make_gateway, upstream, upstream2):
    gw = make_gateway({"services": {"orders": {**canary_service(upstream, upstream2),
                                               "cache": {"ttl": 60}}}})

    def get(forced: str):
        answer = gw.client.get("/orders/echo", headers={"X-Canary": forced})
        return answer.headers["X-Cache-Status"], json.loads(answer.data)["upstream"]
    assert get("always") == ("MISS", "two")
    assert get("always") == ("HIT", "two")
    assert get("never") == ("MISS", "one")  # never the canary's stored answer
    assert get("never") == ("HIT", "one")


def test_weight_zero_and_sticky_none(make_gateway, upstream, upstream2):
    gw = make_gateway({"services": {"orders": canary_service(upstream, upstream2, weight=0)}})
    assert {json.loads(gw.client.get("/orders/echo", headers={"X-User": str(n)}).data)["upstream"]
            for n in range(50)} == {"one"}
    gw = make_gateway({"services": {"orders": canary_service(upstream, upstream2, weight=50,
                                                             sticky="none")}})
    branches = [json.loads(gw.client.get("/orders/echo", headers={"X-User": "same"}).data)
                ["upstream"] for _ in range(60)]
    assert set(branches) == {"one", "two"}  # drawn per request, not per user


@pytest.mark.parametrize("canary, path, words", [
    ({"weight": 5.05}, "canary.weight", "steps of 0.1"),
    ({"weight": 101}, "canary.weight", "0 to 100"),
    ({"sticky": "random"}, "canary.sticky", "header:<Name>"),
    ({"upstream": "ftp://10.0.0.9"}, "canary.upstream", "http(s) URL"),
])
def test_canary_mistakes_name_their_key(canary, path, words):
    config = {"services": {"orders": {"upstream": "http://127.0.0.1:9001", "canary": {
        "upstream": "http://127.0.0.1:9009", "weight": 5, **canary}}}}
    with pytest.raises(ConfigError) as refused:
        parse_config(config)
    message = str(refused.value)
    assert f"services.orders.{path}" in message and words in message, message
