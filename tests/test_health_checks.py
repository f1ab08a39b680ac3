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


def status_targets(gw) -> dict[str, dict]:
    document = requests.get(gw.url + "/_gateway/status.json", timeout=10).json()
    (orders,) = [s for s in document["services"] if s["name"] == "orders"]
    return {t["url"]: t for t in orders["targets"]}


def test_the_status_page_and_readyz_show_the_probed_health(gunicorn_gateway, upstream, upstream2):
    gw = gunicorn_gateway({"services": {"orders": {
        "upstream": [upstream.url, upstream2.url], "health_check": CHECK},
        "users": {"upstream": upstream.url}}}, workers=2)
    assert wait_for(lambda: status_targets(gw)[upstream2.url]["health"] == "healthy", timeout=5)
    assert requests.get(gw.url + "/readyz", timeout=10).status_code == 200
    upstream2.app.health_status = 503  # still accepts connections: only the probe can tell
    assert wait_for(lambda: status_targets(gw)[upstream2.url]["health"] == "unhealthy",
                    timeout=6)
    time.sleep(1.2)  # one interval: the other worker has read the shared state too
    for _ in range(4):  # whichever worker answers
        targets = status_targets(gw)
        assert targets[upstream2.url]["health"] == "unhealthy"
        assert targets[upstream2.url]["up"] is True  # it accepts connections
        assert targets[upstream.url]["health"] == "healthy"
    document = requests.get(gw.url + "/_gateway/status.json", timeout=10).json()
    states = {s["name"]: s for s in document["services"]}
    assert states["orders"]["state"] == "degraded"
    assert [t["health"] for t in states["users"]["targets"]] == [None]  # no active checks
    ready = requests.get(gw.url + "/readyz", timeout=10)
    assert ready.status_code == 200  # one target of orders still passes
    assert ready.json()["failing"] == [{"service": "orders", "upstream": upstream2.url,
                                        "error": "failing its health check (GET /healthz)"}]
    upstream.app.health_status = 500  # now none passes: orders is down, the gateway ready

    def orders_down() -> bool:  # (one answer: the two workers read the state a moment apart)
        ready = requests.get(gw.url + "/readyz", timeout=10)
        return (ready.status_code, ready.json()["status"], ready.json()["services"]["orders"]) \
            == (200, "degraded", "down")
    assert wait_for(orders_down, timeout=6)
    page = requests.get(gw.url + "/_gateway/status", timeout=10).text
    assert "health" in page


def test_a_reload_keeps_the_state_of_unchanged_targets(gunicorn_gateway, upstream, upstream2,
                                                       tmp_path):
    import re
    import signal

    import yaml

    # (it never comes back within the test: the loop below must meet it out however slow
    # the reload is; 15 probes were once not enough in a full run. Coming back is
    # test_a_failing_target_leaves_the_rotation_and_comes_back's)
    slow_return = dict(CHECK, healthy_threshold=1000)
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump({"services": {"orders": {
        "upstream": [upstream.url, upstream2.url], "retries": 0, "health_check": slow_return}}}))
    gw = gunicorn_gateway(str(path), workers=2)
    upstream2.app.health_status = 503
    assert wait_for(lambda: healthy(gw, upstream2.url) == 0.0, timeout=10)
    # it passes again, but needs 1000 probes to come back: a worker starting from nothing
    # would take it at once
    upstream2.app.health_status = 200
    boots = len(re.findall(r"Booting worker", gw.log()))
    gw.process.send_signal(signal.SIGHUP)
    assert wait_for(lambda: len(re.findall(r"Booting worker", gw.log())) == boots + 2, timeout=10)
    hits = upstream2.app.hits
    with requests.Session() as client:
        for _ in range(10):
            # (one out, one in: a loaded machine once timed out the probes of both, and
            # with no target in rotation every target is tried)
            targets = status_targets(gw)
            assert (targets[upstream2.url]["health"], targets[upstream.url]["health"]) == \
                ("unhealthy", "healthy")
            assert client.post(gw.url + "/orders/items", data=b"x", timeout=10).json()[
                "upstream"] == "one"
    assert upstream2.app.hits == hits


def test_a_canarys_targets_are_probed_too(gunicorn_gateway, upstream, upstream2):
    from tests.conftest import dead_port

    dead = f"http://127.0.0.1:{dead_port()}"
    gw = gunicorn_gateway({"services": {"orders": {
        "upstream": upstream.url, "retries": 0, "health_check": CHECK,
        "canary": {"upstream": [upstream2.url, dead], "weight": 100}}}}, workers=2)
    assert wait_for(lambda: upstream2.app.probes > 0, timeout=5)
    assert wait_for(lambda: status_targets(gw)[dead]["health"] == "unhealthy", timeout=10)
    time.sleep(1.2)  # every worker has read the state by now
    targets = status_targets(gw)
    assert targets[dead]["branch"] == "canary" and targets[upstream.url]["branch"] == "primary"
    assert targets[upstream2.url]["health"] == "healthy"
    with requests.Session() as client:
        answers = [client.post(gw.url + "/orders/items", data=b"x", timeout=10)
                   for _ in range(20)]
    assert [a.status_code for a in answers] == [200] * 20
    assert {a.json()["upstream"] for a in answers} == {"two"}
