"""``/_gateway/status`` and its JSON: every worker's figures, and a page a person can read."""

from __future__ import annotations

import time

import pytest
import requests

from gateway.config import hash_key
from tests.backends import shop_backend
from tests.browser import Browser
from tests.conftest import dead_port, wait_for
from tests.upstream import ServerThread, UpstreamApp


def status(url: str) -> dict:
    answer = requests.get(f"{url}/_gateway/status.json", timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def by_name(document: dict, name: str) -> dict:
    return next(s for s in document["services"] + document["aggregates"] if s["name"] == name)


def test_the_figures_of_the_last_minute(make_gateway, upstream, serve):
    shop = {name: serve(shop_backend(name)) for name in ("users", "orders")}
    gw = make_gateway({
        "consumers": {"web": {"keys": [hash_key("web-key")]}},
        "services": {
            "echo": {"upstream": upstream.url, "rate_limit": "5/minute", "cache": {"ttl": 30}},
            "users": shop["users"].url, "orders": shop["orders"].url,
            "gone": f"http://127.0.0.1:{dead_port()}"},
        "aggregates": [{"path": "/dash/<user_id>", "calls": {
            "user": {"service": "users", "path": "/users/{user_id}"},
            "orders": {"service": "orders", "path": "/orders"},
            "missing": {"service": "gone", "path": "/x"}}}]})
    first = status(gw.url)
    # the worker took its baseline when it started: the first read has figures
    assert by_name(first, "echo")["requests_per_second"] == 0
    for _ in range(8):
        requests.get(f"{gw.url}/echo/1")          # 1 MISS, 4 HITs, then 3 refused by the quota
    for _ in range(3):
        requests.get(f"{gw.url}/gone/1")          # 502
    for _ in range(2):
        requests.get(f"{gw.url}/dash/1")
    time.sleep(0.6)
    document = status(gw.url)
    assert document["window_seconds"] >= 0.5
    echo = by_name(document, "echo")
    assert echo["state"] == "up" and echo["targets"][0]["up"] is True
    assert echo["quota_rejections"] == 3
    assert echo["cache_hit_ratio"] == pytest.approx(4 / 5)
    assert echo["total_requests"] == 8 and echo["requests_per_second"] > 0
    assert echo["error_percent"] == 0 and 0 < echo["p50_ms"] <= echo["p99_ms"]
    gone = by_name(document, "gone")
    assert gone["state"] == "down" and gone["error_percent"] == 100.0
    assert gone["targets"][0]["up"] is False
    dash = by_name(document, "dash")
    assert dash["state"] == "degraded"
    calls = {c["name"]: c for c in dash["calls"]}
    assert (calls["user"]["ok"], calls["user"]["failed"]) == (2, 0)
    assert calls["missing"]["failed"] == 2 and calls["missing"]["errors"] == {"bad_gateway": 2}
    assert {"path": "/dash/<user_id>", "route": "dash", "methods": "GET",
            "upstream": "(aggregate of users, orders, gone)",
            "policies": "3 calls"} in document["routes"]


def test_only_the_metrics_addresses_see_it(make_gateway, upstream):
    gw = make_gateway({"metrics_allow_ips": ["10.0.0.0/8"], "services": {"echo": upstream.url}})
    for path in ("/_gateway/status", "/_gateway/status.json"):
        answer = requests.get(gw.url + path)
        assert answer.status_code == 403 and answer.json()["error"] == "forbidden"


def test_every_worker_answers_for_the_whole_gateway(gunicorn_gateway, upstream):
    gw = gunicorn_gateway({"services": {"echo": upstream.url}}, workers=2)
    with requests.Session() as client:
        for _ in range(40):
            assert client.get(f"{gw.url}/echo/1").status_code == 200
    # a fresh connection each time: the answers come from either worker
    totals = {by_name(status(gw.url), "echo")["total_requests"] for _ in range(6)}
    assert totals == {40}
    assert sum(line["service"] == "echo" for line in gw.access_lines(46)) == 40


@pytest.mark.browser
def test_the_page_shows_a_service_turning_red(make_gateway, tmp_path):
    backend = ServerThread(UpstreamApp("users"))
    gw = make_gateway({"services": {"users": backend.url, "orders": backend.url}})
    requests.get(f"{gw.url}/users/1")
    browser = Browser(tmp_path / "profile", budget_ms=4000)
    page = f"{gw.url}/_gateway/status"
    up = browser.dom(page)
    assert 'class="service state-up" data-service="users"' in up, up[:3000]
    assert "Route table" in up and "req/s" in up
    backend.stop()  # the upstream goes away
    down = browser.dom(page)
    assert 'class="service state-down" data-service="users"' in down, down[:3000]
    assert 'class="target down"' in down
    assert browser.screenshot(page, "status").stat().st_size > 10_000


@pytest.mark.browser
def test_the_consumers_panel_shows_the_busiest_and_the_quotas_nearly_spent(make_gateway,
                                                                          tmp_path, upstream):
    import yaml

    from tests.test_consumers import run

    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump({
        "database": "sqlite:///gateway.db", "usage": {"flush_seconds": 0.2},
        "plans": {"small": {"quota": "10/month"}, "large": {"quota": "100/month"}},
        "consumers": {"acme": {"keys": ["acme-key"], "plan": "small"},
                      "beta": {"keys": ["beta-key"], "plan": "large"}},
        "services": {"users": {"upstream": upstream.url, "auth": "api_key"}}}))
    assert run(path, "db", "upgrade")[0] == 0
    gw = make_gateway(str(path))
    for key, count in (("acme-key", 9), ("beta-key", 3)):
        for _ in range(count):
            requests.get(f"{gw.url}/users/1", headers={"X-API-Key": key}, timeout=10)
    requests.get(f"{gw.url}/users/1", timeout=10)  # anonymous: never among the consumers
    assert wait_for(lambda: len(gw.app.extensions["gateway"].usage.tally) == 0, timeout=10)

    def panel():
        return status(gw.url)["consumers"]
    assert wait_for(lambda: len(panel()["top"]) == 2, timeout=15), panel()
    assert [(c["consumer"], c["requests"]) for c in panel()["top"]] == [("acme", 9), ("beta", 3)]
    assert [(q["consumer"], q["used"], q["limit"]) for q in panel()["quotas"]] == \
        [("acme", 9, 10)]  # beta's 3 of 100 is not close to its end
    dom = Browser(tmp_path / "profile", budget_ms=4000).dom(f"{gw.url}/_gateway/status")
    busiest, nearly_spent = dom.split('id="consumers"')[1].split('id="quotas"')
    assert 'data-consumer="acme"' in busiest and 'data-consumer="beta"' in busiest
    assert 'data-consumer="acme"' in nearly_spent and "90 %" in nearly_spent
    assert 'data-consumer="beta"' not in nearly_spent
