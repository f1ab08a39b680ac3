"""Usage records and allowances across gateway hosts (issue 32): two gunicorn hosts of
two workers on one PostgreSQL and one Redis count exactly what they answered, through a
reload and a graceful stop, and an allowance is never over-admitted between them."""

from __future__ import annotations

import json
import signal
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import requests
import yaml

from tests.conftest import wait_for
from tests.test_consumers_hosts import cli_run


def test_two_hosts_count_exactly_what_they_answered_through_a_reload_and_a_stop(
        gunicorn_gateway, upstream, tmp_path, postgres_url, redis_url):
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump({
        "database": postgres_url, "storage": redis_url, "usage": {"flush_seconds": 1},
        "plans": {"metered": {"quota": "1000/month"}},
        "services": {"orders": {"upstream": upstream.url, "auth": "api_key"},
                     "users": {"upstream": upstream.url, "auth": "api_key"}}}))
    cli_run(path, "db", "upgrade")
    keys = {}
    for name, options in (("alpha", ()), ("beta", ()), ("gamma", ("--quota", "20/month")),
                          ("metered", ("--plan", "metered"))):
        cli_run(path, "consumers", "add", name, *options)
        keys[name] = cli_run(path, "keys", "issue", name).strip()
    hosts = [gunicorn_gateway(str(path), workers=2), gunicorn_gateway(str(path), workers=2)]
    assert wait_for(lambda: all(h.log().count("Worker ready") == 2 for h in hosts), timeout=60)

    def send(consumer: str, target: str, count: int) -> Counter:
        def one(i: int) -> int:
            return requests.get(f"{hosts[i % 2].url}{target}", timeout=30,
                                headers={"X-API-Key": keys[consumer]}).status_code
        with ThreadPoolExecutor(8) as pool:
            return Counter(pool.map(one, range(count)))

    answered = [send("alpha", "/orders/echo", 30), send("alpha", "/orders/status/404", 10),
                send("gamma", "/orders/echo", 15)]
    hosts[0].process.send_signal(signal.SIGHUP)  # a reload in the middle: old workers flush
    answered += [send("beta", "/users/echo", 25), send("gamma", "/orders/echo", 15),
                 send("alpha", "/orders/status/503", 5)]
    assert wait_for(lambda: hosts[0].log().count("Worker ready") == 4, timeout=60)
    answered.append(send("beta", "/users/echo", 5))
    assert [dict(a) for a in answered] == [{200: 30}, {404: 10}, {200: 15}, {200: 25},
                                           {200: 5, 429: 10}, {503: 5}, {200: 5}]
    # an allowance of 1,000 a month, asked 1,500 times through both hosts at once
    metered = send("metered", "/orders/echo", 1500)
    assert set(metered) == {200, 429}
    assert 950 <= metered[200] <= 1000, metered
    refused = requests.get(f"{hosts[1].url}/orders/echo", timeout=10,
                           headers={"X-API-Key": keys["metered"]})
    assert refused.json()["error"] == "quota_exhausted"

    for host in hosts:  # a graceful stop: every worker writes what it holds first
        host.stop()
    rows = json.loads(cli_run(path, "usage", "--format", "json"))
    by = {(r["consumer"], r["service"]): r for r in rows}
    classes = ("requests", "status_2xx", "status_4xx", "status_5xx", "status_429")
    assert {key: tuple(row[c] for c in classes) for key, row in by.items()} == {
        ("alpha", "orders"): (45, 30, 10, 5, 0),
        ("beta", "users"): (30, 30, 0, 0, 0),
        ("gamma", "orders"): (30, 20, 10, 0, 10),
        ("metered", "orders"): (1501, metered[200], 1501 - metered[200], 0,
                                1501 - metered[200])}
    logged = [line for host in hosts for line in host.log().splitlines()
              if line.startswith("{") and json.loads(line).get("service")]
    assert sum(r["requests"] for r in rows) == len(logged) == 1606
