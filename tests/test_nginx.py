"""deploy/nginx.conf, run by a real nginx in front of a real gunicorn.

The file is used as shipped, with three values set for the test: the port
nginx listens on, gunicorn's address, and the log directory. Clients connect
from their own loopback addresses (127.0.0.5, 127.0.0.6) so the gateway can
tell them from nginx (127.0.0.1).
"""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port, wait_for_port

pytestmark = pytest.mark.nginx

CONFIG = ROOT / "deploy" / "nginx.conf"


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if not found:
        pytest.fail("nginx is not installed: apt-get install nginx (`make test` does it when "
                    "run as root, scripts/ensure-apt)")
    return found


class Nginx:
    def __init__(self, gateway_port: int, tmp_path: Path):
        self.port = free_port()
        text = CONFIG.read_text()
        for shipped, here in (("listen 80;", f"listen 127.0.0.1:{self.port};"),
                              ("server 127.0.0.1:8000;", f"server 127.0.0.1:{gateway_port};"),
                              ("/var/log/nginx/", f"{tmp_path}/")):
            assert shipped in text, shipped
            text = text.replace(shipped, here)
        self.error_log = tmp_path / "gateway-error.log"
        self.process = start_nginx(text, self.port, tmp_path)

    def stop(self) -> None:
        stop_nginx(self.process)


def start_nginx(text: str, port: int, directory: Path) -> subprocess.Popen:
    """nginx with the configuration ``text``, in ``directory``; returns once it listens."""
    conf = directory / "nginx.conf"
    conf.write_text(text)
    process = subprocess.Popen(
        [nginx_binary(), "-p", str(directory), "-c", str(conf), "-e",
         str(directory / "start.log"), "-g", f"daemon off; pid {directory}/nginx.pid;"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_port(port, process)
    except RuntimeError as exc:
        raise RuntimeError(f"{exc}: {process.stderr.read().decode()}") from None  # type: ignore[union-attr]
    return process


def stop_nginx(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(timeout=10)
    process.stderr.close()  # type: ignore[union-attr]


@pytest.fixture
def behind_nginx(gunicorn_gateway, tmp_path):
    """``start(config)``: gunicorn with ``config``, and nginx from deploy/nginx.conf in front."""
    started = []

    def start(config: dict):
        gw = gunicorn_gateway(config, workers=2)
        started.append(Nginx(gw.port, tmp_path))
        return gw, started[-1]
    yield start
    close_open_connections()  # (first: a kept-alive one would hold the gateway's stop)
    for nginx in started:
        nginx.stop()


#: the test's client connections, closed when it ends (a response may be read later)
OPEN: list[http.client.HTTPConnection] = []


@pytest.fixture(autouse=True)
def close_connections():
    yield
    close_open_connections()


def close_open_connections() -> None:
    while OPEN:
        OPEN.pop().close()


def request(port: int, method: str, path: str, client: str = "127.0.0.5",
            headers: dict | None = None, body=None) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(client, 0))
    OPEN.append(conn)
    headers = headers or {}
    conn.request(method, path, body=body, headers=headers,
                 encode_chunked="Transfer-Encoding" in headers)
    return conn.getresponse()


def test_the_gateway_sees_and_limits_by_the_real_client_address(behind_nginx, upstream,
                                                                redis_url):
    # Redis: nginx's connections may reach either worker, and the quota must count them all
    gw, nginx = behind_nginx({"trusted_proxies": 1, "storage": redis_url, "services": {"users": {
        "upstream": upstream.url, "rate_limit": "3/minute"}}})
    seen = json.loads(request(nginx.port, "GET", "/users/echo").read())
    # the client, then nginx (the proxy the gateway trusts), as the chain goes
    assert seen["headers"]["x-forwarded-for"] == "127.0.0.5, 127.0.0.1"
    # a client-sent X-Forwarded-For changes nothing: the quota still counts 127.0.0.5
    spoofed = request(nginx.port, "GET", "/users/echo", headers={"X-Forwarded-For": "1.2.3.4"})
    assert json.loads(spoofed.read())["headers"]["x-forwarded-for"] == "127.0.0.5, 127.0.0.1"
    assert request(nginx.port, "GET", "/users/echo").status == 200
    limited = request(nginx.port, "GET", "/users/echo", headers={"X-Forwarded-For": "10.9.9.9"})
    assert limited.status == 429
    # another client has its own quota
    assert request(nginx.port, "GET", "/users/echo", client="127.0.0.6").status == 200
    lines = gw.access_lines(5)
    assert [line["client_ip"] for line in lines] == ["127.0.0.5"] * 4 + ["127.0.0.6"]


def test_a_streamed_answer_arrives_chunk_by_chunk(behind_nginx, upstream):
    _, nginx = behind_nginx({"trusted_proxies": 1, "services": {"events": upstream.url}})
    upstream.app.gate.clear()
    response = request(nginx.port, "GET", "/events/stream")
    assert response.status == 200
    # the first line is here while the upstream still holds back the second
    assert response.readline() == b'{"line": 1}\n'
    assert not upstream.app.finished.is_set()
    upstream.app.gate.set()
    assert response.readline() == b'{"line": 2}\n'


def test_server_sent_events_pass_nginx_one_by_one(behind_nginx, upstream):
    _, nginx = behind_nginx({"trusted_proxies": 1, "services": {"feed": upstream.url}})
    response = request(nginx.port, "GET", "/feed/sse?count=3&every=1")
    assert response.getheader("Content-Type") == "text/event-stream"
    assert response.readline() == b"id: 0\n"  # before the upstream's second event
    assert not upstream.app.events_outcome.is_set()
    assert response.read().count(b"data: event") == 3


def test_websockets_pass_nginx(behind_nginx):
    from websockets.sync.client import connect

    from tests.ws_upstream import WebSocketUpstream
    ws_upstream = WebSocketUpstream()
    try:
        gw, nginx = behind_nginx({"trusted_proxies": 1, "services": {"chat": {
            "upstream": ws_upstream.url, "websocket": True}}})
        with connect(f"ws://127.0.0.1:{nginx.port}/chat/echo", open_timeout=5,
                     max_size=None) as ws:
            ws.send("through nginx")
            assert ws.recv(timeout=5) == "through nginx"
            big = b"\x01" * (1 << 20)
            ws.send(big)
            assert ws.recv(timeout=10) == big
        # and plain requests still reuse nginx's keep-alive connections to the gateway
        assert request(nginx.port, "GET", "/chat/echo").status == 426  # the upstream says so
        assert ws_upstream.handshakes[0][1]["x-forwarded-for"] == "127.0.0.1, 127.0.0.1"
    finally:
        ws_upstream.stop()


def test_a_large_upload_streams_through(behind_nginx, serve):
    """The upstream sees the first bytes of a 32 MiB upload before the client sends the rest."""
    received = {"bytes": 0}

    def counting_app(environ, start_response):
        stream = environ["wsgi.input"]
        while chunk := stream.read(65536):
            received["bytes"] += len(chunk)
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(received).encode()]

    backend = serve(counting_app)
    _, nginx = behind_nginx({"trusted_proxies": 1, "services": {"files": backend.url}})
    started_streaming = threading.Event()

    def body():
        yield b"x" * (1024 * 1024)
        deadline = time.monotonic() + 10
        while received["bytes"] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        if received["bytes"]:
            started_streaming.set()
        for _ in range(31):
            yield b"y" * (1024 * 1024)

    response = request(nginx.port, "POST", "/files/upload", body=body(),
                       headers={"Transfer-Encoding": "chunked"})
    assert response.status == 200
    assert json.loads(response.read()) == {"bytes": 32 * 1024 * 1024}
    assert started_streaming.is_set(), "nginx or the gateway held the upload back"


def test_the_gateway_own_paths_are_not_public(behind_nginx, upstream):
    gw, nginx = behind_nginx({"trusted_proxies": 1, "services": {"users": upstream.url}})
    assert request(nginx.port, "GET", "/metrics").status == 404
    assert request(nginx.port, "GET", "/_gateway/status").status == 404
    assert request(nginx.port, "GET", "/_gateway/status.json").status == 404
    # a consumer's own usage, asked with its key: through (401 here, from the gateway)
    usage = request(nginx.port, "GET", "/_gateway/usage")
    assert usage.status == 401 and b"missing_api_key" in usage.read()
    # Prometheus scrapes gunicorn directly
    assert request(gw.port, "GET", "/metrics", client="127.0.0.1").status == 200
    assert request(nginx.port, "GET", "/healthz").status == 200
