"""Prometheus metrics: names and labels, access control, several gunicorn workers."""

from __future__ import annotations

import os
import re
import signal
import time

import requests
from prometheus_client import REGISTRY

from tests.conftest import dead_port, hold_calls, raw_request
from tests.test_streaming import worker_pids


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_request_metrics_are_counted(make_gateway, upstream):
    gw = make_gateway({"services": {"m1": {"upstream": upstream.url, "rate_limit": "2/minute"},
                                    "dead": f"http://127.0.0.1:{dead_port()}"}})
    before = sample("gateway_requests_total", service="m1", method="GET", status="200")
    hist_before = sample("gateway_request_duration_seconds_count", service="m1")
    for _ in range(3):
        raw_request(gw.port, "GET", "/m1/x")
    raw_request(gw.port, "GET", "/dead/x")
    time.sleep(0.05)  # durations are observed when the body has gone out
    assert sample("gateway_requests_total", service="m1", method="GET", status="200") == before + 2
    assert sample("gateway_requests_total", service="m1", method="GET", status="429") >= 1
    assert sample("gateway_rate_limited_total", service="m1") >= 1
    assert sample("gateway_request_duration_seconds_count", service="m1") == hist_before + 3
    assert sample("gateway_upstream_duration_seconds_count", service="m1") >= 2
    assert sample("gateway_upstream_errors_total", service="dead", kind="connect") >= 1


def test_metrics_text_format_and_names(make_gateway, upstream):
    gw = make_gateway({"services": {"m2": upstream.url}})
    raw_request(gw.port, "GET", "/m2/x")
    resp = raw_request(gw.port, "GET", "/metrics")
    assert resp.status == 200
    assert resp.header("Content-Type").startswith("text/plain")
    text = resp.body.decode()
    for name in ("gateway_requests_total", "gateway_request_duration_seconds_bucket",
                 "gateway_upstream_duration_seconds_bucket"):
        assert re.search(rf'^{name}{{.*service="m2"', text, re.M), name


def test_metrics_only_for_allowed_addresses(make_gateway, upstream):
    gw = make_gateway({"metrics_allow_ips": ["10.0.0.0/8"], "services": {"m3": upstream.url}})
    resp = raw_request(gw.port, "GET", "/metrics")
    assert resp.status == 403
    gw2 = make_gateway({"trusted_proxies": 1, "services": {"m4": upstream.url}})
    # default: loopback only, judged on the address the trusted proxy reports
    assert raw_request(gw2.port, "GET", "/metrics").status == 200
    assert raw_request(gw2.port, "GET", "/metrics",
                       headers={"X-Forwarded-For": "198.51.100.7"}).status == 403


def scrape(url: str) -> str:
    return requests.get(url + "/metrics", timeout=10).text


def total(text: str, service: str, status: str = "200") -> float:
    pattern = rf'^gateway_requests_total{{method="GET",service="{service}",status="{status}"}} (\S+)$'
    match = re.search(pattern, text, re.M)
    return float(match.group(1)) if match else 0.0


def test_metrics_add_up_across_gunicorn_workers(gunicorn_gateway, upstream, tmp_path):
    metrics_dir = tmp_path / "prom"
    gw = gunicorn_gateway({"services": {"users": upstream.url}}, workers=3, connections=4,
                          env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)})
    # twelve calls held open at once: a worker takes only as many connections
    # as GATEWAY_CONNECTIONS (4), so all three workers must serve some of them
    held, _ = hold_calls(gw.port, "/users/hold", 12, upstream.app)
    assert held == 12
    for _ in range(18):
        requests.get(gw.url + "/users/1", headers={"Connection": "close"}, timeout=10)
    served_by = {int(name.split("_")[-1].split(".")[0]) for name in os.listdir(metrics_dir)
                 if name.startswith("counter_")}
    assert len(served_by) >= 2, "requests should have been spread over several workers"
    assert total(scrape(gw.url), "users") == 30
    # a worker dies: its counts stay, gunicorn starts another, scrapes still add up
    victim = worker_pids(gw.process.pid)[0]
    os.kill(victim, signal.SIGKILL)
    time.sleep(1.5)
    for _ in range(5):
        requests.get(gw.url + "/users/1", headers={"Connection": "close"}, timeout=10)
    assert total(scrape(gw.url), "users") == 35
    assert "Connection pool is full" not in gw.log()


def test_gunicorn_cleans_old_metric_files_at_start(gunicorn_gateway, upstream, tmp_path):
    metrics_dir = tmp_path / "prom"
    metrics_dir.mkdir()
    (metrics_dir / "counter_99999.db").write_bytes(b"stale")
    gw = gunicorn_gateway({"services": {"users": upstream.url}}, workers=1,
                          env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)})
    assert not (metrics_dir / "counter_99999.db").exists()
    requests.get(gw.url + "/users/1", timeout=10)
    assert total(scrape(gw.url), "users") == 1
