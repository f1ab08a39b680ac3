"""End to end: the example shop behind the gateway under real gunicorn."""

from __future__ import annotations

import json
import os

import pytest
import requests

from examples.services import SERVICES
from examples.updates import serve_updates
from tests.conftest import ROOT, hold_calls, raw_request
from tests.upstream import ServerThread


@pytest.fixture
def shop(monkeypatch):
    """The example backends on free ports (the live updates too); the example config
    finds them via env."""
    servers = {name: ServerThread(factory()) for name, (factory, _) in SERVICES.items()}
    for name, server in servers.items():
        monkeypatch.setenv(f"{name.upper()}_PORT", str(server.port))
    updates = serve_updates("127.0.0.1", 0)
    monkeypatch.setenv("UPDATES_PORT", str(updates.socket.getsockname()[1]))
    yield servers
    for server in servers.values():
        server.stop()
    updates.shutdown()


def test_example_config_under_gunicorn(gunicorn_gateway, shop):
    gw = gunicorn_gateway(str(ROOT / "examples" / "gateway.yaml"), workers=2)
    with requests.Session() as client:
        assert client.get(gw.url + "/users/1").json() == {"id": 1, "name": "Ada"}
        assert client.get(gw.url + "/orders").status_code == 401  # orders needs a key
        key = {"X-API-Key": "demo-key"}
        created = client.post(gw.url + "/orders", json={"user_id": 1, "product_id": 1}, headers=key)
        assert created.status_code == 201
        assert client.get(gw.url + "/products").json()[0]["name"] == "Keyboard"
        assert client.get(gw.url + "/shop/users/1/orders").status_code == 401
        combined = client.get(gw.url + "/shop/users/1/orders", headers=key).json()
        assert combined["user"]["name"] == "Ada" and len(combined["orders"]) == 2
        assert client.put(gw.url + "/orders/1", json={}, headers=key).status_code == 405
        assert client.get(gw.url + "/products/1").headers["X-Cache-Status"] == "MISS"
        assert client.get(gw.url + "/users/1").headers["RateLimit-Limit"] == "100"
        assert client.get(gw.url + "/readyz").json()["status"] == "ok"
        missing = client.get(gw.url + "/users/99")
        assert missing.status_code == 404  # the upstream's own 404 passes through
    from websockets.sync.client import connect
    with connect(gw.url.replace("http", "ws") + "/updates/?access_token=demo-key",
                 open_timeout=5) as updates:  # the live order updates, key in the query
        assert json.loads(updates.recv(timeout=5))["status"] == "received"
    # one JSON line per request on stdout, nothing from gunicorn's access log
    lines = gw.access_lines(12)  # the eleven requests above, and the WebSocket
    assert len(lines) == 12
    assert sorted(e["path"] for e in lines if e["service"] == "users") == [
        "/users/1", "/users/1", "/users/99"]


def test_gunicorn_refuses_scheme_relative_and_dot_paths(gunicorn_gateway, shop):
    gw = gunicorn_gateway(str(ROOT / "examples" / "gateway.yaml"), workers=1)
    for target in ("/users//evil.example/1", "/users/../orders/1", "/users/%2e%2e/orders"):
        resp = raw_request(gw.port, "GET", target)
        assert resp.status == 400, target
        assert json.loads(resp.body)["error"] == "bad_path"
    # gunicorn keeps the leading '//'; no prefix matches it, so no service sees it
    resp = raw_request(gw.port, "GET", "//evil.example/users/1")
    assert resp.status == 404 and json.loads(resp.body)["error"] == "not_found"


def test_hundreds_of_slow_calls_in_flight_at_once(gunicorn_gateway, upstream):
    """With the default settings, two workers hold 200 upstream calls open together."""
    gw = gunicorn_gateway({"services": {"slow": upstream.url}}, workers=2)
    held, results = hold_calls(gw.port, "/slow/hold", 200, upstream.app)
    assert held == 200, f"only {held} calls were in flight at once"
    assert results.count(200) == 200
    assert "Connection pool is full" not in gw.log()


def test_invalid_config_stops_gunicorn_with_the_key_path(gunicorn_gateway, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("services:\n  users:\n    upstream: htp://x\n")
    with pytest.raises(RuntimeError, match=r"services.users.upstream: 'htp://x' is not an http\(s\) URL"):
        gunicorn_gateway(str(bad), workers=1)


def test_flask_run_serves_the_gateway_for_development(shop, tmp_path):
    import os
    import subprocess
    import sys

    from tests.conftest import free_port, wait_for_port
    port = free_port()
    env = dict(os.environ, GATEWAY_CONFIG=str(ROOT / "examples" / "gateway.yaml"))
    process = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "run", "--debug", "--no-reload",
         "-p", str(port)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, process)
        resp = requests.get(f"http://127.0.0.1:{port}/users/2", timeout=10)
        assert resp.json() == {"id": 2, "name": "Linus"}
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_config_refused_by_check_stops_gunicorn_before_any_worker(gunicorn_gateway, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("services:\n  users: http://127.0.0.1:9\nblueprints: ['nosuch.module:bp']\n")
    with pytest.raises(RuntimeError) as info:
        gunicorn_gateway(str(bad), workers=2)
    log = str(info.value)
    assert "blueprints[0]: cannot import 'nosuch.module'" in log
    assert "Booting worker" not in log and "Traceback" not in log


def test_flask_run_reports_a_config_error_in_a_few_lines(tmp_path):
    import os
    import subprocess
    import sys
    bad = tmp_path / "bad.yaml"
    bad.write_text("services:\n  users:\n    upstream: htp://x\n")
    env = dict(os.environ, GATEWAY_CONFIG=str(bad))
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "run", "--debug"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "services.users.upstream: 'htp://x' is not an http(s) URL" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) <= 5, result.stderr


def test_clients_keep_their_connection_between_requests(gunicorn_gateway, upstream):
    """nginx keeps its connections to the gateway open: so must gunicorn."""
    import http.client
    gw = gunicorn_gateway({"services": {"users": upstream.url}}, workers=2)
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
    try:
        conn.request("GET", "/users/1")
        first = conn.getresponse()
        first.read()
        sock = conn.sock
        assert first.getheader("Connection") != "close"
        conn.request("GET", "/users/2")
        second = conn.getresponse()
        second.read()
        assert second.status == 200 and conn.sock is sock  # the same connection served both
    finally:
        conn.close()
    assert "No keepalived connections" not in gw.log()


def test_gunicorn_leaves_no_metrics_directory_behind(gunicorn_gateway, upstream, tmp_path,
                                                     monkeypatch):
    import glob
    import tempfile
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    pattern = os.path.join(tempfile.gettempdir(), "gateway-metrics-*")
    before = set(glob.glob(pattern))
    bad = tmp_path / "bad.yaml"
    bad.write_text("services:\n  users:\n    upstream: htp://x\n")
    with pytest.raises(RuntimeError):
        gunicorn_gateway(str(bad), workers=1)
    gw = gunicorn_gateway({"services": {"users": upstream.url}}, workers=2)
    assert requests.get(gw.url + "/users/1", timeout=10).status_code == 200
    assert set(glob.glob(pattern)) - before, "a running gateway keeps its metrics directory"
    gw.process.terminate()
    gw.process.wait(timeout=20)
    assert set(glob.glob(pattern)) == before


def test_a_burst_spreads_over_workers(gunicorn_gateway, upstream):
    """Two workers of 8 connections each, 16 slow calls at once: every one starts
    at once. A worker with no room stops accepting, so its sibling takes the rest."""
    gw = gunicorn_gateway({"services": {"slow": upstream.url}}, workers=2, connections=8)
    for _ in range(2):
        held, statuses = hold_calls(gw.port, "/slow/hold", 16, upstream.app, wait=5)
        assert statuses == [200] * 16
        assert held == 16, f"only {held} of 16 calls were started at once"


def test_workers_run_gevent_patched_before_anything_imports_ssl(gunicorn_gateway, upstream):
    """The master imports nothing that gevent must patch first (urllib3, redis,
    requests): a module that took ssl's classes before the patch would block a
    whole worker on every TLS read."""
    config = {"storage": "memory://", "services": {"users": {
        "upstream": upstream.url, "rate_limit": "100/minute",
        "transform": {"response": {"body": "{id: id}"}}}},
        "blueprints": ["blueprints.shop:bp", "blueprints.dashboard:bp",
                       "blueprints.legacy_orders:bp"],
        "aggregates": [{"path": "/both", "calls": {"a": {"service": "users", "path": "/a"}}}]}
    gw = gunicorn_gateway(config, workers=2)
    assert requests.get(gw.url + "/users/1", timeout=10).status_code == 200
    log = gw.log()
    assert "Using worker: gateway.serve.worker.GatewayWorker" in log
    assert "MonkeyPatchWarning" not in log and "monkey-patch" not in log.lower(), log


def test_a_connection_storm_is_accepted_while_the_workers_are_busy(gunicorn_gateway):
    """Both workers busy (each pass of their loops takes 50 ms of CPU), then 400
    connections at once: every one is answered within a 5 s client timeout.
    gunicorn's own gevent worker accepts one connection per pass here, 20 a
    second per worker, and most of these would time out in the listen queue."""
    import socket
    import threading
    import time

    gw = gunicorn_gateway({"services": {"none": "http://127.0.0.1:9"},
                           "blueprints": ["tests.sample_blueprints:busy"]}, workers=2)
    spinners = [threading.Thread(target=raw_request, args=(gw.port, "GET", "/busy/spin/8.0"))
                for _ in range(8)]  # several: both workers take some
    for spinner in spinners:
        spinner.start()
    time.sleep(1)
    answered: list[bool] = []

    def connect() -> None:
        try:
            with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
                answered.append(sock.recv(64).startswith(b"HTTP/1.1 200"))
        except OSError:
            answered.append(False)
    clients = [threading.Thread(target=connect) for _ in range(400)]
    for client in clients:
        client.start()
    for client in clients:
        client.join(timeout=30)
    for spinner in spinners:
        spinner.join(timeout=30)
    assert answered.count(True) == 400, f"{answered.count(False)} of 400 connections failed"


def test_gateway_serve_starts_from_any_directory_and_stops_quietly(gunicorn_gateway, upstream,
                                                                   tmp_path):
    """`gateway serve` from outside the checkout; Ctrl-C (SIGINT to the whole process
    group, as a terminal sends it) ends it with one line from the master."""
    import signal
    import time

    gw = gunicorn_gateway({"services": {"users": upstream.url}}, workers=2, serve=True)
    assert str(tmp_path) != str(ROOT)
    assert requests.get(gw.url + "/users/1", timeout=10).json()["upstream"] == "one"
    before = len(gw.log().splitlines())
    os.killpg(gw.process.pid, signal.SIGINT)
    gw.process.wait(timeout=15)
    time.sleep(0.2)
    after = [line for line in gw.log().splitlines()[before:] if not line.startswith("{")]
    assert len(after) == 1 and "Shutting down: Master" in after[0], "\n".join(after)


def test_a_worker_told_to_stop_while_it_boots_stops_without_the_graceful_timeout(tmp_path,
                                                                                  upstream):
    """A TERM that reaches a worker before gunicorn has installed its own handlers
    (here: a boot slowed by 3 s right after the fork) must still stop it: before, the
    master waited its whole graceful timeout and then sent SIGKILL."""
    import signal
    import subprocess
    import sys
    import time

    import yaml

    from tests.conftest import free_port, slow_boot_settings

    settings = slow_boot_settings(tmp_path)
    config = tmp_path / "gateway.yaml"
    config.write_text(yaml.safe_dump({"services": {"users": upstream.url}}))
    log_path = tmp_path / "gunicorn.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(settings), "-b",
             f"127.0.0.1:{free_port()}", "--graceful-timeout", "30", "wsgi:app"],
            cwd=ROOT, env=dict(os.environ, GATEWAY_CONFIG=str(config), GATEWAY_WORKERS="1"),
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while "Booting worker" not in log_path.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "Booting worker" in log_path.read_text()
        process.send_signal(signal.SIGTERM)  # the worker is still in its 3 s boot
        process.wait(timeout=90)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    # a worker that ends by itself says so; one the master had to SIGKILL says nothing
    assert "Worker stopped while booting" in log_path.read_text(), log_path.read_text()
