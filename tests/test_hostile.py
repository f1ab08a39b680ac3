"""Hostile input, sent to the gateway under real gunicorn: a clear 4xx, never a 500,
never a request to the wrong place.

Two services: ``users`` (an echo upstream) and ``admin`` (a canary upstream
that no hostile request may ever reach). After every input the gateway must
still answer a normal request.
"""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
import requests

from gateway.config import hash_key
from tests.conftest import start_gunicorn
from tests.upstream import ServerThread, UpstreamApp

pytestmark = pytest.mark.hostile


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    users = ServerThread(UpstreamApp("users"))
    admin = ServerThread(UpstreamApp("admin"))
    gateway = start_gunicorn({
        "consumers": {"alice": {"keys": [hash_key("alice-key")], "services": ["users", "orders"]},
                      "bob": {"keys": [hash_key("bob-key")], "services": ["admin"]}},
        "services": {
            "users": {"upstream": users.url, "max_body_bytes": 100_000},
            "orders": {"upstream": users.url, "auth": "api_key", "transform": {
                "request": {"body": "{id: id}"}}},
            "admin": {"upstream": admin.url, "auth": "api_key"}}},
        tmp_path_factory.mktemp("hostile"))
    yield gateway, users.app, admin.app
    gateway.stop()
    users.stop()
    admin.stop()


def send(port: int, raw: bytes, timeout: float = 10) -> tuple[int | None, bytes]:
    """Send raw bytes; the status of the first answer (None if the connection closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(raw)
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    if not data.startswith(b"HTTP/1."):
        return None, data
    return int(data.split(b" ", 2)[1]), data


def still_serving(gateway) -> None:
    assert requests.get(f"{gateway.url}/users/echo", timeout=10).status_code == 200


PATHS = [
    "/users/../admin/echo", "/users/%2e%2e/admin/echo", "/users/%2E%2e/admin/echo",
    "/users/.%2e/admin/echo", "/users/%2e./admin/echo", "/users/..%2fadmin/echo",
    "/users/%2f..%2fadmin/echo", "/users/..%5cadmin/echo", "/users/..\\admin/echo",
    "/users/%5c..%5cadmin", "/users//admin.example/echo", "//admin.example/users/echo",
    "///admin/echo", "/users/./echo", "/users/%2e/echo", "/users/%00", "/users/a%00b",
    "/users/%ff%fe%fd", "/users/\xff\xfe", "/users/" + "a" * 9000, "/users/" + "a/" * 3000,
    "http://admin.example/users/echo", "http://127.0.0.1:1/admin/echo", "/users;/../admin/echo",
    "/users/%252e%252e/admin", "*", "/admin%2fecho", "/ADMIN/echo", "/users/echo#/../../admin",
    "/users/echo?x=/../../admin", "\\users\\echo",
]


def test_paths_never_leave_their_service(site, reliability):
    gateway, users, admin = site
    before_admin = admin.hits
    for target in PATHS:
        raw = f"GET {target} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n".encode("latin-1")
        status, answer = send(gateway.port, raw)
        assert status is not None and status < 500, (target, answer[:300])
        if status == 200:
            body = answer.split(b"\r\n\r\n", 1)[1]
            if body.startswith(b"{"):
                seen = json.loads(body)["raw_uri"]
                assert seen.startswith("/users/") and ".." not in seen.split("?")[0], (target, seen)
    assert admin.hits == before_admin, "a hostile path reached the admin service"
    still_serving(gateway)
    reliability.tried(len(PATHS))


HEADERS = [
    # (name, raw request head after the request line, what must hold)
    ("bare CR in a value", b"X-A: one\rX-Injected: 1\r\n", "refused"),
    ("bare LF line", b"X-A: one\nX-Injected: 1\r\n", "no injection"),
    ("obsolete line folding", b"X-A: one\r\n X-Injected: 1\r\n", "refused"),
    ("NUL in a value", b"X-A: a\x00b\r\n", "refused"),
    ("oversized header", b"X-Big: " + b"a" * 20000 + b"\r\n", "refused"),
    ("too many headers", b"".join(b"X-%d: 1\r\n" % i for i in range(200)), "refused"),
    ("space before colon", b"X-API-Key : alice-key\r\n", "refused"),
    ("two Content-Lengths", b"Content-Length: 5\r\nContent-Length: 6\r\n", "refused"),
    ("Content-Length with Transfer-Encoding",
     b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n", "refused"),
    ("Transfer-Encoding not chunked", b"Transfer-Encoding: gzip\r\n", "refused"),
    ("negative Content-Length", b"Content-Length: -1\r\n", "refused"),
    ("huge Content-Length", b"Content-Length: 99999999999999999999\r\n", "refused"),
]


@pytest.mark.parametrize("name, head, rule", HEADERS, ids=[h[0] for h in HEADERS])
def test_malformed_headers_are_refused_and_smuggle_nothing(site, name, head, rule):
    gateway, users, admin = site
    before = admin.hits
    # a second request hidden in the body must never be seen as a request
    smuggled = b"GET /admin/echo HTTP/1.1\r\nHost: gw\r\n\r\n"
    raw = (b"POST /users/echo HTTP/1.1\r\nHost: gw\r\n" + head + b"\r\n"
           + b"0\r\n\r\n" + smuggled)
    status, answer = send(gateway.port, raw)
    if rule == "refused":
        assert status is None or 400 <= status < 500, (name, answer[:300])
    else:
        assert status is None or status < 500, (name, answer[:300])
    assert b"x-injected" not in answer.lower()
    assert admin.hits == before
    still_serving(gateway)


def test_spoofed_identity_headers_are_replaced(site, reliability):
    gateway, users, admin = site
    spoofs = {"X-Forwarded-For": "10.0.0.1", "X-Consumer": "alice", "X-Real-IP": "10.0.0.2",
              "X-Request-ID": "r" * 6_000}
    seen = requests.get(f"{gateway.url}/users/echo", headers=spoofs).json()["headers"]
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert "x-consumer" not in seen
    assert len(seen["x-request-id"]) <= 128
    for odd_id in ("a\x7fb", "a\tb", "a b", "ä-ö", "<script>"):
        odd = requests.get(f"{gateway.url}/users/echo", headers={"X-Request-ID": odd_id})
        assert odd.status_code in (200, 400), odd_id  # gunicorn refuses control characters
        if odd.status_code == 200:
            sent = odd.json()["headers"]["x-request-id"]
            assert sent != odd_id and sent == odd.headers["X-Request-ID"]
    reliability.tried(9)


def test_api_keys_only_as_meant(site, reliability):
    gateway, users, admin = site
    url = f"{gateway.url}/orders/echo"
    cases = [
        ({}, "?api_key=alice-key", 401),                              # not in the query string
        ({"X-API-Key": ""}, "", 401),                                  # empty
        # whitespace at the edges is not part of a field value (RFC 9110 §5.5)
        ({"X-API-Key": "alice-key "}, "", 200),
        ({"x-api-key": "alice-key"}, "", 200),                         # header names have no case
        ({"X-API-Key": "ALICE-KEY"}, "", 401),                         # keys do
        ({"X-API-Key": "alice-key\x00"}, "", 400),                  # gunicorn refuses NUL
        ({"X-API-Key": "bob-key"}, "", 403),                           # a valid key, not for this service
        ({"X-API-Key": "alice-key", "Authorization": "Bearer alice-key"}, "", 200),
    ]
    for headers, query, expected in cases:
        try:
            status = requests.get(url + query, headers=headers, timeout=10).status_code
        except requests.exceptions.InvalidHeader:
            status = 401  # requests itself refuses to send it
        assert status == expected, (headers, query)
    # two X-API-Key headers: refused, whichever is valid
    status, _ = send(gateway.port, b"GET /orders/echo HTTP/1.1\r\nHost: gw\r\n"
                     b"X-API-Key: alice-key\r\nX-API-Key: wrong\r\nConnection: close\r\n\r\n")
    assert status == 401
    status, _ = send(gateway.port, b"GET /admin/echo HTTP/1.1\r\nHost: gw\r\n"
                     b"X-API-Key: alice-key\r\nX-API-Key: bob-key\r\nConnection: close\r\n\r\n")
    assert status == 401
    assert admin.hits == 0
    reliability.tried(len(cases) + 2)


def test_bodies_the_gateway_must_refuse(site, reliability):
    gateway, users, admin = site
    key = {"X-API-Key": "alice-key", "Content-Type": "application/json"}
    nested = "[" * 50_000 + "]" * 50_000
    checks = [
        (f"{gateway.url}/orders/echo", b"{not json", key, 400),
        (f"{gateway.url}/orders/echo", nested.encode(), key, 400),
        (f"{gateway.url}/orders/echo", b'{"id": ' + b"9" * 5000 + b"}", key, 400),  # int too long
        (f"{gateway.url}/orders/echo", "\"\ud800\"".encode("utf-8", "surrogatepass"), key, 400),
    ]
    for url, body, headers, expected in checks:
        answer = requests.post(url, data=body, headers=headers, timeout=20)
        assert answer.status_code == expected, (body[:40], answer.text[:200])
    # over the limit without a Content-Length: cut off while it streams
    big = requests.post(f"{gateway.url}/users/echo", data=iter([b"x" * 60_000] * 3), timeout=20)
    assert big.status_code == 413 and big.json()["error"] == "body_too_large"
    still_serving(gateway)
    reliability.tried(len(checks) + 1)


def test_slow_uploads_do_not_hold_others_up(site, reliability):
    """Fifty clients trickling a body a byte at a time; everyone else is still served at once."""
    gateway, users, admin = site
    slow = []
    for _ in range(50):
        sock = socket.create_connection(("127.0.0.1", gateway.port))
        sock.sendall(b"POST /users/echo HTTP/1.1\r\nHost: gw\r\nContent-Length: 1000\r\n\r\nx")
        slow.append(sock)
    stop = threading.Event()

    def trickle():
        while not stop.is_set():
            for sock in slow:
                try:
                    sock.send(b"x")
                except OSError:
                    pass
            time.sleep(0.2)
    threading.Thread(target=trickle, daemon=True).start()
    try:
        for _ in range(20):
            started = time.monotonic()
            still_serving(gateway)
            assert time.monotonic() - started < 8  # (a blocked worker would take 10+: timeout)
    finally:
        stop.set()
        for sock in slow:
            sock.close()
    reliability.tried(50)
