"""``health_check``: active probes take a failing target out of the rotation and bring it back."""

from __future__ import annotations

import time

import pytest
import requests

from gateway.config import ConfigError, parse_config
from tests.conftest import start_gunicorn, wait_for
from tests.upstream import ServerThread, UpstreamApp

CHECK = {"path": "/healthz", "interval": 1, "timeout": 1, "healthy_threshold": 2,
         "unhealthy_threshold": 2}


def healthy(gw, target: str) -> float | None:
    text = requests.get(gw.url + "/metrics", timeout=10).text
    sample = f'gateway_target_healthy{{service="orders",target="{target}"}} '
    return next((float(line.split()[-1]) for line in text.splitlines()
                 if line.startswith(sample)), None)


def test_a_failing_target_leaves_the_rotation_and_comes_back(gunicorn_gateway, upstream,
                                                              upstream2):
    gw = gunicorn_gateway({"services": {"orders": {
        "upstream": [upstream.url, upstream2.url], "retries": 0, "health_check": CHECK}}},
        workers=2)
    # probes start with the gateway, before any request
    assert wait_for(lambda: upstream2.app.probes > 0, timeout=5)
    assert wait_for(lambda: healthy(gw, upstream2.url) == 1.0, timeout=5)
    port = upstream2.port
    upstream2.stop()
    stopped = time.monotonic()
    assert wait_for(lambda: healthy(gw, upstream2.url) == 0.0, timeout=10)
    # interval × unhealthy_threshold, plus an interval, plus a worker reading it late
    assert time.monotonic() - stopped < 1 * 2 + 1 + 1.5
    time.sleep(1.2)  # every worker has read the state by now
    with requests.Session() as client:  # POSTs are never retried: none may meet the dead one
        statuses = [client.post(gw.url + "/orders/items", data=b"x", timeout=10).status_code
                    for _ in range(20)]
    assert statuses == [200] * 20
    back = ServerThread(UpstreamApp("two again"), port=port)
    try:
        assert wait_for(lambda: healthy(gw, upstream2.url) == 1.0, timeout=10)
        time.sleep(1.2)
        names = {requests.get(gw.url + "/orders/x", timeout=10).json()["upstream"]
                 for _ in range(10)}
        assert names == {"one", "two again"}
    finally:
        back.stop()
    # probes are nobody's requests: no access-log line, no client count
    assert all(line["path"] != "/healthz" for line in gw.access_lines(31))


def probes_over(seconds: float, *apps) -> list[int]:
    before = [app.probes for app in apps]
    time.sleep(seconds)
    return [app.probes - b for app, b in zip(apps, before, strict=True)]


def test_each_target_is_probed_once_per_interval_per_host(gunicorn_gateway, upstream, upstream2):
    gw = gunicorn_gateway({"services": {"orders": {
        "upstream": [upstream.url, upstream2.url], "health_check": CHECK}}}, workers=2)
    assert wait_for(lambda: upstream.app.probes > 0, timeout=5)
    assert requests.get(gw.url + "/orders/x", timeout=10).status_code == 200
    counts = probes_over(5, upstream.app, upstream2.app)
    assert all(3 <= n <= 1.6 * 5 / 1 for n in counts), counts


def test_two_hosts_sharing_redis_probe_once_per_interval(tmp_path, upstream, redis_url):
    config = {"storage": redis_url, "services": {"orders": {
        "upstream": upstream.url, "health_check": CHECK}}}
    hosts = [start_gunicorn(config, tmp_path, workers=2) for _ in range(2)]
    try:
        assert wait_for(lambda: upstream.app.probes > 0, timeout=5)
        for host in hosts:
            assert requests.get(host.url + "/orders/x", timeout=10).status_code == 200
        (count,) = probes_over(5, upstream.app)
        assert 3 <= count <= 1.6 * 5 / 1, count
    finally:
        for host in hosts:
            host.stop()


@pytest.mark.parametrize("check, path", [
    ({"interval": 0.5}, "health_check.interval"),
    ({"timeout": 0}, "health_check.timeout"),
    ({"unhealthy_threshold": 0}, "health_check.unhealthy_threshold"),
    ({"path": "healthz"}, "health_check.path"),
])
def test_health_check_mistakes_name_their_key(check, path):
    with pytest.raises(ConfigError) as refused:
        parse_config({"services": {"orders": {"upstream": "http://127.0.0.1:9001",
                                              "health_check": check}}})
    assert f"services.orders.{path}" in str(refused.value), str(refused.value)
