"""Fixtures: real upstream servers on loopback, gateways built from a config dict.

- ``upstream`` / ``upstream2``: an :class:`~tests.upstream.UpstreamApp` served over HTTP.
- ``make_gateway(config)``: a gateway app served over real HTTP in a thread;
  the result has ``.url``, ``.app`` and ``.client`` (Flask's test client).
- ``raw_request(...)``: one request with http.client, which sends the target
  byte-for-byte (requests and urllib3 would normalise it).
- ``gunicorn_gateway(config)``: the gateway under real gunicorn, as deployed.
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from gateway import create_app
from tests.upstream import ServerThread, UpstreamApp

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def access_log_to_captured_stdout(monkeypatch):
    """Access lines go through print() in tests, so pytest captures them per test."""
    from gateway import accesslog
    monkeypatch.setattr(accesslog, "sink", print)


@pytest.fixture
def upstream():
    server = ServerThread(UpstreamApp("one"))
    server.app = server.server.app
    yield server
    server.app.gate.set()
    server.stop()


@pytest.fixture
def upstream2():
    server = ServerThread(UpstreamApp("two"))
    server.app = server.server.app
    yield server
    server.stop()


@dataclass
class Gateway:
    url: str
    port: int
    app: object
    client: object


@pytest.fixture
def make_gateway():
    servers = []

    def build(config: dict) -> Gateway:
        app = create_app(config)
        server = ServerThread(app)
        servers.append(server)
        return Gateway(url=server.url, port=server.port, app=app, client=app.test_client())

    yield build
    for server in servers:
        server.stop()


@dataclass
class RawResponse:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = self.all(name)
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


def raw_request(port: int, method: str, target: str, headers: dict | None = None,
                body=None, encode_chunked: bool = False) -> RawResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True,
                        skip_host=any(k.lower() == "host" for k in (headers or {})))
        for key, value in (headers or {}).items():
            conn.putheader(key, value)
        if encode_chunked:
            conn.putheader("Transfer-Encoding", "chunked")
        elif body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        if encode_chunked:
            for chunk in body:
                conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            conn.send(b"0\r\n\r\n")
        elif body is not None:
            conn.send(body)
        resp = conn.getresponse()
        data = resp.read()
        return RawResponse(resp.status, resp.reason, resp.getheaders(), data)
    finally:
        conn.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen | None = None, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening "
                               f"on {port}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


@dataclass
class GunicornGateway:
    url: str
    port: int
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text()


@pytest.fixture
def gunicorn_gateway(tmp_path):
    """Start ``gunicorn -c gunicorn.conf.py -b 127.0.0.1:PORT wsgi:app`` on a config."""
    started = []

    def start(config: dict | str, workers: int = 2, threads: int = 8,
              env: dict | None = None) -> GunicornGateway:
        if isinstance(config, dict):
            path = tmp_path / f"gateway-{len(started)}.yaml"
            path.write_text(yaml.safe_dump(config))
        else:
            path = Path(config)
        port = free_port()
        log_path = tmp_path / f"gunicorn-{port}.log"
        full_env = dict(os.environ, GATEWAY_CONFIG=str(path), GATEWAY_WORKERS=str(workers),
                        GATEWAY_THREADS=str(threads), **(env or {}))
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py",
                 "-b", f"127.0.0.1:{port}", "wsgi:app"],
                cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT)
        gateway = GunicornGateway(f"http://127.0.0.1:{port}", port, process, log_path)
        started.append(gateway)
        try:
            wait_for_port(port, process)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n{gateway.log()}") from None
        return gateway

    yield start
    for gateway in started:
        gateway.process.terminate()
        try:
            gateway.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            gateway.process.kill()
