"""The shared store's health, where a person looks: gateway check, the gunicorn log,
/readyz, /metrics and the status page."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import requests
import yaml

from tests.conftest import wait_for


def config(storage: str, upstream: str, **extra) -> dict:
    return {"storage": storage, "services": {"users": {"upstream": upstream,
                                                       "rate_limit": "100/minute"}}, **extra}


def down_url(private_redis) -> str:
    """The private Redis's URL with a password in it (to see that it is never shown)."""
    return private_redis.url.replace("redis://", "redis://:s3cret@")


def test_check_and_the_gunicorn_master_warn_when_the_store_does_not_answer(
        gunicorn_gateway, upstream, private_redis, tmp_path):
    private_redis.stop()
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config(down_url(private_redis), upstream.url)))
    check = subprocess.run([str(Path(sys.executable).parent / "gateway"), "check", "--config",
                            str(path)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0  # valid: the gateway starts and fails open
    assert "does not answer" in check.stderr and "fail open" in check.stderr
    assert "s3cret" not in check.stderr and ":***@" in check.stderr
    gw = gunicorn_gateway(str(path), workers=1)
    # the worker is up (and stops at once when the test ends) and fails open
    assert requests.get(f"{gw.url}/users/1", timeout=10).status_code == 200
    log = gw.log()
    assert "[WARNING] storage: redis://:***@" in log and "s3cret" not in log


def readyz(url: str) -> tuple[int, dict]:
    answer = requests.get(f"{url}/readyz", timeout=10)
    return answer.status_code, answer.json()


def storage_up(url: str) -> float:
    for line in requests.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith("gateway_storage_up"):
            return float(line.split()[-1])
    raise AssertionError("gateway_storage_up is not exported")


def test_readyz_metrics_and_the_status_page_follow_the_store(make_gateway, upstream,
                                                             private_redis):
    gw = make_gateway(config(down_url(private_redis).replace(":s3cret@", ""), upstream.url))
    assert readyz(gw.url) == (200, {"status": "ok", "storage": "ok",
                                    "services": {"users": "up"}, "failing": []})
    assert storage_up(gw.url) == 1
    private_redis.stop()
    assert requests.get(f"{gw.url}/users/1", timeout=10).status_code == 200   # fails open
    status, body = readyz(gw.url)
    assert (status, body["status"], body["storage"]) == (200, "degraded", "unreachable")
    assert storage_up(gw.url) == 0
    page = requests.get(f"{gw.url}/_gateway/status.json", timeout=10).json()["storage"]
    assert page["state"] == "unreachable" and page["since"]
    private_redis.start()
    assert wait_for(lambda: readyz(gw.url)[1]["storage"] == "ok", 5)
    assert storage_up(gw.url) == 1


def test_readyz_fails_when_quotas_would_refuse(make_gateway, upstream, private_redis):
    gw = make_gateway(config(private_redis.url, upstream.url, on_storage_error="deny"))
    assert readyz(gw.url)[0] == 200
    private_redis.stop()
    # the store is asked again at most once a second
    assert wait_for(lambda: readyz(gw.url)[0] == 503, 5)
    status, body = readyz(gw.url)
    assert (status, body["status"], body["storage"]) == (503, "unavailable", "unreachable")
    assert requests.get(f"{gw.url}/users/1", timeout=10).status_code == 503
