"""WebSocket passthrough: handshakes through the chain, frames untouched both ways."""

from __future__ import annotations

import json
import socket
import time

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.ws_upstream import WebSocketUpstream


@pytest.fixture
def ws_upstream():
    server = WebSocketUpstream()
    yield server
    server.stop()


def ws_url(gateway, path: str) -> str:
    return f"ws://127.0.0.1:{gateway.port}{path}"


def chat(ws_upstream, **websocket) -> dict:
    return {"services": {"chat": {"upstream": ws_upstream.url,
                                  "websocket": websocket or True}}}


def echoes(url: str, **options) -> None:
    with connect(url, max_size=None, open_timeout=5, **options) as ws:
        ws.send("hello")
        assert ws.recv(timeout=5) == "hello"
        ws.send(b"\x00\x01binary\xff")
        assert ws.recv(timeout=5) == b"\x00\x01binary\xff"
        big = bytes(range(256)) * 4096  # 1 MiB
        ws.send(big)
        assert ws.recv(timeout=10) == big


def test_echo_through_flask_run(make_gateway, ws_upstream):
    """werkzeug's server (`flask run`) hands over its connection too."""
    gw = make_gateway(chat(ws_upstream))
    echoes(ws_url(gw, "/chat/echo"))


def test_echo_subprotocol_and_headers_through_gunicorn(gunicorn_gateway, ws_upstream):
    gw = gunicorn_gateway(chat(ws_upstream), workers=2)
    echoes(ws_url(gw, "/chat/echo"))
    with connect(ws_url(gw, "/chat/echo?room=7"), subprotocols=["chat.v1", "chat.v2"],
                 open_timeout=5) as ws:
        assert ws.subprotocol == "chat.v2"
        assert ws.response.headers["X-Request-ID"]
        ws.send("x")
        assert ws.recv(timeout=5) == "x"
    path, headers = ws_upstream.handshakes[-1]
    assert path == "/chat/echo?room=7"  # the prefix is kept unless strip_prefix
    assert headers["sec-websocket-protocol"] == "chat.v1, chat.v2"
    assert "permessage-deflate" in headers["sec-websocket-extensions"]
    assert headers["x-forwarded-for"] == "127.0.0.1" and headers["x-request-id"]
    assert headers["upgrade"] == "websocket" and headers["connection"] == "Upgrade"


def raw_handshake(port: int, path: str, headers: dict[str, str]) -> tuple[bytes, socket.socket]:
    """Send a handshake by hand; the status line and headers, and the open socket."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    lines = [f"GET {path} HTTP/1.1", "Host: gw", "Sec-WebSocket-Version: 13",
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
             *(f"{k}: {v}" for k, v in headers.items())]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    return head, sock


def test_keep_alive_upgrade_is_a_handshake(gunicorn_gateway, ws_upstream):
    """Browsers send `Connection: keep-alive, Upgrade`: the token counts, in any case."""
    gw = gunicorn_gateway(chat(ws_upstream), workers=1)
    head, sock = raw_handshake(gw.port, "/chat/echo",
                               {"Upgrade": "WebSocket", "Connection": "keep-alive, Upgrade"})
    sock.close()
    assert head.startswith(b"HTTP/1.1 101 ")
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head


def test_a_service_without_websocket_refuses_handshakes(make_gateway, upstream):
    gw = make_gateway({"services": {"plain": upstream.url}})
    with pytest.raises(InvalidStatus) as refused:
        connect(ws_url(gw, "/plain/x"), open_timeout=5)
    response = refused.value.response
    assert response.status_code == 400
    body = json.loads(response.body)
    assert body["error"] == "websocket_not_enabled" and "services.plain.websocket" in body["message"]


def test_an_upstream_refusal_is_relayed(gunicorn_gateway, ws_upstream):
    gw = gunicorn_gateway(chat(ws_upstream), workers=1)
    with pytest.raises(InvalidStatus) as refused:
        connect(ws_url(gw, "/chat/refuse"), open_timeout=5)
    assert refused.value.response.status_code == 403
    assert json.loads(refused.value.response.body) == {"error": "nope"}


def test_each_side_leaving_closes_the_other(gunicorn_gateway, ws_upstream):
    gw = gunicorn_gateway(chat(ws_upstream), workers=1)
    # the upstream closes (code 4000): the client sees that close within 2 s
    with connect(ws_url(gw, "/chat/hangup"), open_timeout=5) as ws:
        ws.send("bye")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=2)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4000
    # the client drops its TCP connection without a Close: the upstream sees it end
    ws = connect(ws_url(gw, "/chat/quiet"), open_timeout=5)
    ws.socket.shutdown(socket.SHUT_RDWR)
    ws.socket.close()
    started = time.monotonic()
    assert ws_upstream.wait_closed(2, timeout=2), "the upstream never saw the client leave"
    assert time.monotonic() - started < 2


def test_an_idle_connection_gets_1001_both_ways(gunicorn_gateway, ws_upstream):
    gw = gunicorn_gateway(chat(ws_upstream, idle_timeout=1), workers=1)
    with connect(ws_url(gw, "/chat/quiet"), open_timeout=5) as ws:
        started = time.monotonic()
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
        assert 0.9 < time.monotonic() - started < 3
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    assert ws_upstream.wait_closed(1, timeout=3)
    assert ws_upstream.closed[-1] == 1001


def test_a_connection_is_one_access_log_line_with_its_bytes(gunicorn_gateway, ws_upstream):
    gw = gunicorn_gateway(chat(ws_upstream), workers=1)
    with connect(ws_url(gw, "/chat/echo"), open_timeout=5, compression=None) as ws:
        ws.send("0123456789")
        assert ws.recv(timeout=5) == "0123456789"
    deadline = time.monotonic() + 5
    line = None
    while time.monotonic() < deadline and line is None:
        line = next((json.loads(text) for text in gw.log().splitlines()
                     if text.startswith("{") and "\"status\":101" in text), None)
        time.sleep(0.1)
    assert line is not None, gw.log()
    assert line["service"] == "chat" and line["path"] == "/chat/echo"
    # 10 bytes of payload each way: 2 bytes of header to the client, 6 (masked) from it,
    # plus each side's Close frame
    assert line["bytes_sent"] >= 12 and line["bytes_received"] >= 16
    assert line["duration_ms"] > 0
