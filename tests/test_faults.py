"""Faults the gateway must survive, beyond the ones each module's tests already provoke.

Each: the client gets the documented error (or, once the status line is out,
a connection cut short, never a truncated body passed off as complete), and
the gateway serves the next request. The others are marked ``fault`` where
they live (test_errors, test_failures, test_breaker, test_quota, test_reload,
test_aggregate) and counted in the same line.
"""

from __future__ import annotations

import re
import signal
import socket
import threading
import time

import pytest
import redis
import requests

from tests.conftest import assert_cut_short, raw_request

pytestmark = pytest.mark.fault


def raw_backend(answer: bytes, then_close: bool = True):
    """A backend that reads a request and sends ``answer`` as is, then hangs up."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(32)

    def serve():
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            conn.recv(65536)
            conn.sendall(answer)
            if then_close:
                conn.close()
    threading.Thread(target=serve, daemon=True).start()
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.parametrize("answer", [
    b"garbage\r\n\r\n",
    b"HTTP/1.1 abc Not A Status\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\n" + b"X-Long: " + b"a" * 200_000 + b"\r\n\r\n",
    b"",
], ids=["not HTTP", "bad status", "bad length", "endless header", "nothing"])
def test_a_malformed_answer_is_a_502(make_gateway, upstream, answer):
    sock, url = raw_backend(answer)
    try:
        gw = make_gateway({"services": {"bad": {"upstream": url, "retries": 0},
                                        "good": upstream.url}})
        result = raw_request(gw.port, "GET", "/bad/x")
        assert result.status == 502, result.body
        assert b'"error": "bad_gateway"' in result.body
        assert raw_request(gw.port, "GET", "/good/1").status == 200
    finally:
        sock.close()


def test_a_chunked_answer_cut_short_is_not_passed_off_as_complete(gunicorn_gateway, upstream):
    sock, url = raw_backend(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                            b"5\r\nhello\r\n")  # then the backend dies: no last chunk
    try:
        gw = gunicorn_gateway({"services": {"bad": {"upstream": url, "retries": 0},
                                            "good": upstream.url}}, workers=1)
        assert_cut_short(gw.port, "/bad/x")
        assert_cut_short(gw.port, "/good/truncated")  # a Content-Length the upstream breaks
        assert requests.get(f"{gw.url}/good/1", timeout=10).status_code == 200
    finally:
        sock.close()


def test_a_worker_killed_mid_request(gunicorn_gateway, upstream):
    gw = gunicorn_gateway({"services": {"users": upstream.url}}, workers=2)
    upstream.app.gate.clear()
    outcome: list[object] = []

    def held():
        try:
            outcome.append(requests.get(f"{gw.url}/users/hold", timeout=20).status_code)
        except requests.ConnectionError as exc:
            outcome.append(exc)
    client = threading.Thread(target=held)
    client.start()
    deadline = time.monotonic() + 10
    while upstream.app.in_flight < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    for pid in {int(p) for p in re.findall(r"Booting worker with pid: (\d+)", gw.log())}:
        try:
            import os
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    client.join(timeout=20)
    upstream.app.gate.set()
    # the client in flight learns its connection is gone; it never gets a wrong answer
    assert len(outcome) == 1 and isinstance(outcome[0], requests.ConnectionError), outcome
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{gw.url}/users/1", timeout=5).status_code == 200:
                break
        except requests.ConnectionError:
            time.sleep(0.1)
    assert requests.get(f"{gw.url}/users/1", timeout=5).status_code == 200
    assert gw.process.poll() is None


def test_a_client_leaving_mid_upload_frees_the_upstream_at_once(make_gateway, upstream):
    gw = make_gateway({"services": {"users": {"upstream": upstream.url, "retries": 0}}})
    pool = gw.app.extensions["gateway"].upstreams["users"].targets[0].pool
    for _ in range(3):
        sock = socket.create_connection(("127.0.0.1", gw.port))
        sock.sendall(b"POST /users/echo HTTP/1.1\r\nHost: gw\r\nContent-Length: 10000000\r\n\r\n")
        sock.sendall(b"x" * 1_000_000)
        sock.close()  # gone after a tenth of the body
    deadline = time.monotonic() + 5  # was: the upstream read timeout (30 s)
    while pool.pool.qsize() < pool.pool.maxsize and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pool.pool.qsize() == pool.pool.maxsize  # every connection given back
    assert raw_request(gw.port, "POST", "/users/echo", body=b"whole").status == 200


def test_a_client_leaving_mid_upload_under_gunicorn(gunicorn_gateway, upstream):
    gw = gunicorn_gateway({"services": {"users": upstream.url}}, workers=1)
    sock = socket.create_connection(("127.0.0.1", gw.port))
    sock.sendall(b"POST /users/echo HTTP/1.1\r\nHost: gw\r\nContent-Length: 10000000\r\n\r\n")
    sock.sendall(b"x" * 1_000_000)
    sock.close()
    (line,) = gw.access_lines(1, timeout=5)
    assert line["status"] == 400 and line["duration_ms"] < 5000
    assert requests.get(f"{gw.url}/users/1", timeout=5).status_code == 200


def test_redis_stops_and_comes_back_under_load(make_gateway, upstream, private_redis):
    gw = make_gateway({"storage": private_redis.url, "on_storage_error": "allow",
                       "services": {"users": {"upstream": upstream.url,
                                              "rate_limit": "100000/minute",
                                              "cache": {"ttl": 1}}}})
    results: list[tuple[int, float]] = []
    stop = threading.Event()

    def load():
        with requests.Session() as client:
            while not stop.is_set():
                started = time.monotonic()
                status = client.get(f"{gw.url}/users/1", timeout=10).status_code
                results.append((status, time.monotonic() - started))
    clients = [threading.Thread(target=load) for _ in range(6)]
    for client in clients:
        client.start()
    time.sleep(1)
    private_redis.stop()
    time.sleep(1.5)
    during = len(results)
    private_redis.start()
    time.sleep(1.5)
    stop.set()
    for client in clients:
        client.join(timeout=15)
    assert {status for status, _ in results} == {200}  # on_storage_error: allow
    # no request waited on the dead store longer than its timeout (0.5 s) and a margin
    assert max(seconds for _, seconds in results) < 1.5
    assert len(results) > during + 10  # traffic went on after the restart
    # and the gateway writes to the store again, without a restart of its own
    store = redis.Redis.from_url(private_redis.url)
    deadline = time.monotonic() + 5
    while not store.keys("*") and time.monotonic() < deadline:
        requests.get(f"{gw.url}/users/1", timeout=5)
        time.sleep(0.1)
    assert store.keys("*")
