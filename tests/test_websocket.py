"""WebSocket passthrough: handshakes through the chain, frames untouched both ways."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from unittest.mock import ANY

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.conftest import wait_for
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
    # a ping comes back as a pong; the client's close code reaches the upstream
    with connect(ws_url(gw, "/chat/echo"), open_timeout=5) as ws:
        assert ws.ping(b"are you there").wait(timeout=5)
        ws.close(4001, "client is done")
    assert ws_upstream.wait_closed(3, timeout=5) and ws_upstream.closed[-1] == 4001
    path, headers = ws_upstream.handshakes[-2]
    assert path == "/chat/echo?room=7"  # the prefix is kept unless strip_prefix
    assert headers["sec-websocket-protocol"] == "chat.v1, chat.v2"
    assert "permessage-deflate" in headers["sec-websocket-extensions"]
    assert headers["x-forwarded-for"] == "127.0.0.1" and headers["x-request-id"]
    assert headers["upgrade"] == "websocket" and headers["connection"] == "Upgrade"


def raw_handshake(port: int, path: str, headers: dict[str, str],
                  then: bytes = b"") -> tuple[bytes, socket.socket]:
    """Send a handshake by hand (and ``then`` in the same write); the status line and
    headers, what came after them, and the open socket."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    lines = [f"GET {path} HTTP/1.1", "Host: gw", "Sec-WebSocket-Version: 13",
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
             *(f"{k}: {v}" for k, v in headers.items())]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + then)
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    return head, sock


def masked_text_frame(text: str) -> bytes:
    """One client frame (FIN, text, masked), as RFC 6455 §5.2 lays it out (< 126 bytes)."""
    payload, mask = text.encode(), b"\x01\x02\x03\x04"
    return bytes([0x81, 0x80 | len(payload)]) + mask + bytes(
        b ^ mask[i % 4] for i, b in enumerate(payload))


@pytest.mark.parametrize("server", ["gunicorn", "flask run"])
def test_a_frame_sent_with_the_handshake_reaches_the_upstream(gunicorn_gateway, make_gateway,
                                                              ws_upstream, server):
    gw = gunicorn_gateway(chat(ws_upstream), workers=1) if server == "gunicorn" \
        else make_gateway(chat(ws_upstream))
    head, sock = raw_handshake(gw.port, "/chat/echo", {"Upgrade": "websocket",
                                                       "Connection": "Upgrade"},
                               then=masked_text_frame("first") + masked_text_frame("second"))
    with sock:
        assert head.startswith(b"HTTP/1.1 101 ")
        received = head.partition(b"\r\n\r\n")[2]
        wanted = b"\x81\x05first\x81\x06second"  # the echoes, unmasked
        while len(received) < len(wanted):
            chunk = sock.recv(4096)
            assert chunk, f"the connection closed after {received!r}"
            received += chunk
        assert received == wanted


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
    with connect(ws_url(gw, "/chat/quiet"), open_timeout=5) as ws:
        ws.socket.shutdown(socket.SHUT_RDWR)
        # (bounds that hold on a machine several times slower: the failure they catch is
        # "never", or the 300 s idle timeout)
        assert ws_upstream.wait_closed(2, timeout=10), "the upstream never saw the client leave"


def test_an_idle_connection_gets_1001_both_ways(gunicorn_gateway, ws_upstream):
    gw = gunicorn_gateway(chat(ws_upstream, idle_timeout=1), workers=1)
    with connect(ws_url(gw, "/chat/quiet"), open_timeout=5) as ws:
        started = time.monotonic()
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=15)
        assert 0.9 < time.monotonic() - started < 15  # its idle timeout, not the recv's
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    assert ws_upstream.wait_closed(1, timeout=3)
    assert ws_upstream.closed[-1] == 1001


def test_a_connection_is_one_access_log_line_with_its_bytes(gunicorn_gateway, ws_upstream):
    gw = gunicorn_gateway(chat(ws_upstream), workers=1)
    with connect(ws_url(gw, "/chat/echo"), open_timeout=5, compression=None) as ws:
        ws.send("0123456789")
        assert ws.recv(timeout=5) == "0123456789"
    lines = [entry for entry in gw.access_lines(1) if entry["status"] == 101]
    assert lines, gw.log()
    line = lines[0]
    assert line["service"] == "chat" and line["path"] == "/chat/echo"
    # 10 bytes of payload each way: 2 bytes of header to the client, 6 (masked) from it,
    # plus each side's Close frame
    assert line["bytes_sent"] >= 12 and line["bytes_received"] >= 16
    assert line["duration_ms"] > 0


# -- the chain: keys, tokens, origins, quotas, connections per consumer --------------

def refused(url: str, **options):
    """The HTTP answer to a refused handshake: (status, JSON body, headers)."""
    with pytest.raises(InvalidStatus) as refusal:
        connect(url, open_timeout=5, **options)
    response = refusal.value.response
    return response.status_code, json.loads(response.body or b"{}"), response.headers


@pytest.fixture
def idp(serve):
    from tests.idp import IdentityProvider
    provider = IdentityProvider()
    provider.url = serve(provider).url
    return provider


def test_keys_and_tokens_guard_handshakes_and_may_come_in_the_query(make_gateway, ws_upstream,
                                                                      idp):
    gw = make_gateway({
        "consumers": {"web": {"keys": ["web-key"]}},
        "issuers": {"corp": {"issuer": idp.issuer, "audiences": ["orders-api"]}},
        "services": {
            "chat": {"upstream": ws_upstream.url, "auth": "api_key",
                     "websocket": {"credentials_query": "access_token"}},
            "feed": {"upstream": ws_upstream.url, "auth": ["api_key", "jwt"],
                     "websocket": {"credentials_query": "access_token"}},
            "strict": {"upstream": ws_upstream.url, "auth": "api_key", "websocket": True}}})
    status, body, _ = refused(ws_url(gw, "/chat/echo"))
    assert (status, body["error"]) == (401, "missing_api_key")
    status, body, _ = refused(ws_url(gw, "/chat/echo?access_token=wrong"))
    assert (status, body["error"]) == (401, "invalid_api_key")
    with connect(ws_url(gw, "/chat/echo"), additional_headers={"X-API-Key": "web-key"},
                 open_timeout=5) as ws:
        ws.send("by header")
        assert ws.recv(timeout=5) == "by header"
    with connect(ws_url(gw, "/chat/echo?room=1&access_token=web-key"), open_timeout=5) as ws:
        ws.send("by query")
        assert ws.recv(timeout=5) == "by query"
    path, headers = ws_upstream.handshakes[-1]
    assert path == "/chat/echo?room=1"  # the credential never goes upstream
    assert headers["x-consumer"] == "web" and "x-api-key" not in headers
    with connect(ws_url(gw, f"/feed/echo?access_token={idp.token()}"), open_timeout=5) as ws:
        ws.send("token")
        assert ws.recv(timeout=5) == "token"
    assert ws_upstream.handshakes[-1][1]["x-consumer"] == "corp:user-1"
    # without credentials_query the query is not looked at
    status, body, _ = refused(ws_url(gw, "/strict/echo?access_token=web-key"))
    assert (status, body["error"]) == (401, "missing_api_key")


def test_the_query_credential_is_for_handshakes_only(make_gateway, upstream):
    gw = make_gateway({"consumers": {"web": {"keys": ["web-key"]}},
                       "services": {"chat": {"upstream": upstream.url, "auth": "api_key",
                                             "websocket": {"credentials_query": "access_token"}}}})
    answer = gw.client.get("/chat/x?access_token=web-key")
    assert answer.status_code == 401 and answer.get_json()["error"] == "missing_api_key"


def test_a_foreign_origin_is_refused_when_cors_is_set(make_gateway, ws_upstream):
    gw = make_gateway({"services": {"chat": {
        "upstream": ws_upstream.url, "websocket": True,
        "cors": {"origins": ["https://app.example.com"]}}}})
    status, body, _ = refused(ws_url(gw, "/chat/echo"), origin="https://evil.example.net")
    assert (status, body["error"]) == (403, "origin_not_allowed")
    for origin in ("https://app.example.com", None):  # allowed, and a non-browser client
        with connect(ws_url(gw, "/chat/echo"), origin=origin, open_timeout=5) as ws:
            ws.send("ok")
            assert ws.recv(timeout=5) == "ok"


def test_a_handshake_costs_one_hit_of_the_quota(make_gateway, ws_upstream):
    gw = make_gateway({"services": {"chat": {"upstream": ws_upstream.url, "websocket": True,
                                             "rate_limit": "2/minute"}}})
    for _ in range(2):
        with connect(ws_url(gw, "/chat/echo"), open_timeout=5) as ws:
            for _ in range(5):  # messages are not requests: they cost nothing
                ws.send("m")
                ws.recv(timeout=5)
    status, body, headers = refused(ws_url(gw, "/chat/echo"))
    assert (status, body["error"]) == (429, "rate_limited") and headers["Retry-After"]


def test_connections_per_consumer_are_limited_across_workers(gunicorn_gateway, ws_upstream,
                                                              redis_url):
    gw = gunicorn_gateway({
        "storage": redis_url,
        "consumers": {"web": {"keys": ["web-key"]}, "app": {"keys": ["app-key"]}},
        "services": {"chat": {"upstream": ws_upstream.url, "auth": "api_key",
                              "websocket": {"max_per_consumer": 3}}}}, workers=2)
    key = {"X-API-Key": "web-key"}
    with contextlib.ExitStack() as held:
        opened = [held.enter_context(connect(ws_url(gw, "/chat/echo"), additional_headers=key,
                                             open_timeout=5))
                  for _ in range(3)]  # new connections land on either worker
        for _ in range(4):
            status, body, _ = refused(ws_url(gw, "/chat/echo"), additional_headers=key)
            assert (status, body["error"]) == (429, "too_many_connections")
        with connect(ws_url(gw, "/chat/echo"), additional_headers={"X-API-Key": "app-key"},
                     open_timeout=5) as other:  # another consumer has its own count
            other.send("x")
            assert other.recv(timeout=5) == "x"
        opened[0].close()
        deadline = time.monotonic() + 5
        while True:  # the closed one's slot comes back once the gateway has seen it end
            try:
                held.enter_context(connect(ws_url(gw, "/chat/echo"), additional_headers=key,
                                           open_timeout=5))
                break
            except InvalidStatus:
                assert time.monotonic() < deadline, "a closed connection's slot never came back"
                time.sleep(0.1)


def test_max_lifetime_ends_a_busy_connection_with_1001(make_gateway, ws_upstream):
    gw = make_gateway(chat(ws_upstream, max_lifetime=1))
    with connect(ws_url(gw, "/chat/echo"), open_timeout=5) as ws:
        started = time.monotonic()
        with pytest.raises(ConnectionClosed) as closed:
            while time.monotonic() - started < 15:  # never idle: only its age ends it
                ws.send("ping")
                ws.recv(timeout=15)
        assert 0.9 < time.monotonic() - started < 15
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001


def metric(text: str, sample: str) -> float:
    """One sample's value in a /metrics page (0 when absent)."""
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[-1])
    return 0.0


def test_metrics_count_connections_bytes_and_why_they_ended(make_gateway, ws_upstream):
    gw = make_gateway(chat(ws_upstream))  # in-process: the counters are shared by the tests
    samples = {"open": 'gateway_websocket_connections{service="chat"}',
               "client": 'gateway_websocket_closed_total{reason="client",service="chat"}',
               "to_client": 'gateway_websocket_bytes_total{direction="to_client",service="chat"}',
               "to_upstream": 'gateway_websocket_bytes_total{direction="to_upstream",'
                              'service="chat"}'}

    def read() -> dict[str, float]:
        text = gw.client.get("/metrics").get_data(as_text=True)
        return {name: metric(text, sample) for name, sample in samples.items()}
    before = read()
    with connect(ws_url(gw, "/chat/echo"), open_timeout=5, compression=None) as ws:
        ws.send("12345")
        assert ws.recv(timeout=5) == "12345"
        assert read()["open"] == before["open"] + 1
    deadline = time.monotonic() + 20  # (a slow machine: the end is counted as the tunnel closes)
    while (after := read())["client"] < before["client"] + 1:  # the client said Close first
        assert time.monotonic() < deadline, after
        time.sleep(0.05)
    assert after["open"] == before["open"]
    # "12345" each way (2 + 5 bytes to the client, 6 + 5 masked from it), then each
    # side's Close frame (2 + 2 bytes to the client, 6 + 2 from it)
    assert after["to_client"] - before["to_client"] == 11
    assert after["to_upstream"] - before["to_upstream"] == 19


def test_a_reload_closes_open_connections_with_1001_after_the_graceful_timeout(
        gunicorn_gateway, ws_upstream):
    import signal
    gw = gunicorn_gateway(chat(ws_upstream), workers=1,
                          env={"GUNICORN_CMD_ARGS": "--graceful-timeout 2"})
    with connect(ws_url(gw, "/chat/echo"), open_timeout=5) as ws:
        ws.send("before")
        assert ws.recv(timeout=5) == "before"
        gw.process.send_signal(signal.SIGHUP)
        # the old worker serves until the new one is ready, then is told to stop
        assert wait_for(lambda: gw.log().count("Worker ready") == 2, timeout=60)
        started = time.monotonic()
        with pytest.raises(ConnectionClosed) as closed:
            while True:  # the old connection keeps working until the graceful timeout
                ws.send("still here")
                assert ws.recv(timeout=5) == "still here"
                time.sleep(0.2)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
        assert 1.5 < time.monotonic() - started < 15  # the graceful timeout, 2 s, ended it
    assert ws_upstream.wait_closed(1, timeout=3) and ws_upstream.closed[0] == 1001
    with connect(ws_url(gw, "/chat/echo"), open_timeout=5) as fresh:  # the new worker
        fresh.send("new")
        assert fresh.recv(timeout=5) == "new"


def test_lambda_answers_handshakes_with_501(ws_upstream, tmp_path, monkeypatch):
    """Under Lambda (lambda_handler.py, an HTTP API v2 event) no server hands over a
    connection: a handshake is 501 websocket_not_supported, not a hang or a 500."""
    import importlib
    import sys
    from pathlib import Path

    import yaml
    config = tmp_path / "gateway.yaml"
    config.write_text(yaml.safe_dump(chat(ws_upstream)))
    monkeypatch.setenv("GATEWAY_CONFIG", str(config))
    sys.modules.pop("lambda_handler", None)
    try:
        handler = importlib.import_module("lambda_handler").handler
        event = json.loads((Path(__file__).parent / "lambda_events" / "http_api_v2.json")
                           .read_text())
        event["rawPath"] = event["requestContext"]["http"]["path"] = "/prod/chat/echo"
        event["rawQueryString"] = ""
        event.pop("queryStringParameters", None)
        event["headers"].update({"upgrade": "websocket", "connection": "Upgrade",
                                 "sec-websocket-version": "13",
                                 "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ=="})
        answer = handler(event, None)
    finally:
        sys.modules.pop("lambda_handler", None)
    assert answer["statusCode"] == 501, answer
    assert json.loads(answer["body"])["error"] == "websocket_not_supported"


def test_the_status_page_counts_open_connections_across_workers(gunicorn_gateway, ws_upstream,
                                                                upstream):
    import requests
    gw = gunicorn_gateway({"services": {"chat": {"upstream": ws_upstream.url, "websocket": True},
                                        "plain": upstream.url}}, workers=2)

    def open_now() -> dict:
        services = requests.get(gw.url + "/_gateway/status.json", timeout=10).json()["services"]
        return {s["name"]: s["websockets"] for s in services}
    with contextlib.ExitStack() as held:
        for _ in range(3):
            held.enter_context(connect(ws_url(gw, "/chat/echo"), open_timeout=5))
        assert open_now() == {"chat": 3, "plain": None}
    deadline = time.monotonic() + 5
    while open_now()["chat"] != 0:
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_five_hundred_open_at_once_while_plain_requests_are_served(gunicorn_gateway,
                                                                   ws_upstream, upstream):
    import asyncio

    import requests
    from websockets.asyncio.client import connect as connect_async
    gw = gunicorn_gateway({"services": {"chat": {"upstream": ws_upstream.url, "websocket": True},
                                        "plain": upstream.url}}, workers=2)
    url = ws_url(gw, "/chat/echo")

    async def hold_all() -> list[str]:
        async def one(n: int):
            ws = await connect_async(url, open_timeout=20)
            await ws.send(f"hello {n}")
            assert await asyncio.wait_for(ws.recv(), 20) == f"hello {n}"
            return ws
        opened = await asyncio.gather(*(one(n) for n in range(500)))
        # every one open at once: each answers again, while plain requests go through
        plain = asyncio.get_running_loop().run_in_executor(None, lambda: [
            requests.get(gw.url + "/plain/echo", timeout=10).status_code for _ in range(50)])
        answers = []
        for n, ws in enumerate(opened):
            await ws.send(f"again {n}")
            answers.append(await asyncio.wait_for(ws.recv(), 20))
        statuses = await plain
        assert statuses == [200] * 50
        await asyncio.gather(*(ws.close() for ws in opened))
        return answers

    answers = asyncio.run(hold_all())
    assert answers == [f"again {n}" for n in range(500)]


def test_open_connections_count_against_the_workers_connections(gunicorn_gateway, ws_upstream,
                                                                upstream):
    """GATEWAY_CONNECTIONS=3, one worker: three open WebSockets fill it, and a fourth
    connection waits in the listen queue until one of them ends."""
    import requests
    gw = gunicorn_gateway({"services": {"chat": {"upstream": ws_upstream.url, "websocket": True},
                                        "plain": upstream.url}}, workers=1, connections=3)
    assert requests.get(gw.url + "/plain/echo", timeout=5).status_code == 200
    with contextlib.ExitStack() as held:
        first = held.enter_context(connect(ws_url(gw, "/chat/echo"), open_timeout=5))
        for _ in range(2):
            held.enter_context(connect(ws_url(gw, "/chat/echo"), open_timeout=5))
        with pytest.raises(requests.exceptions.ReadTimeout):
            requests.get(gw.url + "/plain/echo", timeout=(2, 2))
        first.close()
        assert requests.get(gw.url + "/plain/echo", timeout=10).status_code == 200


def refused_status(url: str) -> tuple[int, dict | None]:
    """A refused handshake's status and JSON body (None when it has none)."""
    with pytest.raises(InvalidStatus) as refused:
        connect(url, open_timeout=5)
    response = refused.value.response
    return response.status_code, json.loads(response.body) if response.body else None


def test_a_handshake_to_a_refused_port_is_a_json_502(make_gateway):
    from tests.conftest import dead_port
    gw = make_gateway({"services": {"chat": {"upstream": f"http://127.0.0.1:{dead_port()}",
                                             "websocket": True, "retries": 0}}})
    assert refused_status(ws_url(gw, "/chat/echo")) == (502, {
        "error": "bad_gateway", "message": "the upstream service refused the connection",
        "request_id": ANY})


def test_a_handshake_fails_over_to_the_next_target(make_gateway, ws_upstream):
    from tests.conftest import dead_port
    gw = make_gateway({"services": {"chat": {
        "upstream": [f"http://127.0.0.1:{dead_port()}", ws_upstream.url],
        "websocket": True, "retries": 1}}})
    for _ in range(4):  # round robin starts on each target in turn: every one connects
        with connect(ws_url(gw, "/chat/echo"), open_timeout=5) as ws:
            ws.send("hi")
            assert ws.recv(timeout=5) == "hi"


def test_failed_handshakes_open_the_breaker_for_every_call(make_gateway, upstream):
    from tests.conftest import dead_port
    gw = make_gateway({"services": {"chat": {
        "upstream": f"http://127.0.0.1:{dead_port()}", "websocket": True, "retries": 0,
        "circuit_breaker": {"failures": 2, "reset_after": 30}}}})
    assert [refused_status(ws_url(gw, "/chat/echo"))[0] for _ in range(2)] == [502, 502]
    status, body = refused_status(ws_url(gw, "/chat/echo"))
    assert status == 503 and body is not None and body["error"] == "upstream_unavailable"
    assert gw.client.get("/chat/x").status_code == 503  # plain calls meet the open circuit too


def test_a_handshake_answered_5xx_counts_against_the_breaker(make_gateway, serve):
    def broken(environ, start_response):
        start_response("500 Broken", [("Content-Length", "0")])
        return [b""]
    server = serve(broken)
    gw = make_gateway({"services": {"chat": {
        "upstream": server.url, "websocket": True, "retries": 0,
        "circuit_breaker": {"failures": 2, "reset_after": 30}}}})
    assert [refused_status(ws_url(gw, "/chat/echo"))[0] for _ in range(3)] == [500, 500, 503]
