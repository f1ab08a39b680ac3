"""Errors the gateway makes itself: JSON bodies, the right status, nothing internal."""

from __future__ import annotations

import json
import logging
import socket
import threading

import pytest

from tests.conftest import dead_port, raw_request


def error_of(resp) -> dict:
    assert resp.header("Content-Type") == "application/json"
    body = json.loads(resp.body)
    assert set(body) == {"error", "message", "request_id"}
    assert body["request_id"] == resp.header("X-Request-ID")
    return body


@pytest.fixture
def closing_server():
    """Accepts connections and closes them without answering (a crashed backend)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    stop = threading.Event()

    def serve():
        sock.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            conn.recv(65536)
            conn.close()
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    stop.set()
    thread.join()
    sock.close()


def test_unknown_route_is_404(make_gateway, upstream):
    gw = make_gateway({"services": {"users": upstream.url}})
    resp = raw_request(gw.port, "GET", "/nowhere")
    assert resp.status == 404
    body = error_of(resp)
    assert body["error"] == "not_found" and "/nowhere" in body["message"]


def test_method_not_allowed_is_405_with_allow(make_gateway, upstream):
    gw = make_gateway({"services": {"users": {"upstream": upstream.url, "methods": ["GET", "POST"]}}})
    resp = raw_request(gw.port, "DELETE", "/users/1")
    assert resp.status == 405
    assert error_of(resp)["error"] == "method_not_allowed"
    assert set(resp.header("Allow").split(", ")) == {"GET", "HEAD", "POST"}


@pytest.mark.fault
def test_refused_connection_is_502(make_gateway):
    gw = make_gateway({"services": {"users": {"upstream": f"http://127.0.0.1:{dead_port()}",
                                              "retries": 1}}})
    resp = raw_request(gw.port, "GET", "/users/1")
    assert resp.status == 502
    assert error_of(resp)["error"] == "bad_gateway"


@pytest.mark.fault
def test_connection_closed_without_answer_is_502(make_gateway, closing_server):
    gw = make_gateway({"services": {"users": {"upstream": closing_server, "retries": 0}}})
    resp = raw_request(gw.port, "POST", "/users/1", body=b"x")
    assert resp.status == 502
    assert error_of(resp)["error"] == "bad_gateway"


@pytest.mark.fault
def test_read_timeout_is_504(make_gateway, upstream):
    gw = make_gateway({"services": {"users": {"upstream": upstream.url,
                                              "timeout": {"connect": 1, "read": 0.3}}}})
    resp = raw_request(gw.port, "GET", "/users/sleep?s=1.5")
    assert resp.status == 504
    assert error_of(resp)["error"] == "gateway_timeout"


@pytest.mark.fault
def test_unhandled_exception_is_a_safe_500_and_logged(make_gateway, upstream, caplog):
    gw = make_gateway({"services": {"users": upstream.url},
                       "blueprints": ["tests.sample_blueprints:bp"]})
    with caplog.at_level(logging.ERROR):
        resp = raw_request(gw.port, "GET", "/sample/boom")
    assert resp.status == 500
    body = error_of(resp)
    assert body["error"] == "internal_error"
    assert b"secret internal detail" not in resp.body and b"Traceback" not in resp.body
    logged = [r for r in caplog.records if r.exc_info]
    assert logged and "secret internal detail" in str(logged[0].exc_info[1])
    assert body["request_id"] in logged[0].getMessage()
    # the next request is unharmed
    assert raw_request(gw.port, "GET", "/sample/hello").status == 200


def test_hand_written_blueprint_is_registered(make_gateway, upstream):
    gw = make_gateway({"services": {"users": upstream.url},
                       "blueprints": ["tests.sample_blueprints:bp"]})
    resp = raw_request(gw.port, "GET", "/sample/hello")
    assert json.loads(resp.body) == {"hello": "world"}
    assert resp.header("X-Request-ID")


def test_idempotent_requests_fail_over_to_a_live_target(make_gateway, upstream):
    dead = f"http://127.0.0.1:{dead_port()}"
    gw = make_gateway({"services": {"users": {"upstream": [dead, upstream.url], "retries": 1}}})
    for _ in range(6):
        resp = raw_request(gw.port, "GET", "/users/1")
        assert resp.status == 200
        assert json.loads(resp.body)["upstream"] == "one"


def test_non_idempotent_requests_are_not_retried_but_the_dead_target_is_skipped(
        make_gateway, upstream):
    dead = f"http://127.0.0.1:{dead_port()}"
    gw = make_gateway({"services": {"users": {"upstream": [dead, upstream.url], "retries": 2}}})
    # round-robin starts at the first target: the POST is not sent twice
    assert raw_request(gw.port, "POST", "/users/1", body=b"x").status == 502
    # ... and the target that just failed is passed over from then on
    for _ in range(4):
        assert raw_request(gw.port, "POST", "/users/1", body=b"x").status == 200


def test_round_robin_spreads_requests(make_gateway, upstream, upstream2):
    gw = make_gateway({"services": {"users": {"upstream": [upstream.url, upstream2.url]}}})
    seen = [json.loads(raw_request(gw.port, "GET", "/users/1").body)["upstream"] for _ in range(6)]
    assert seen.count("one") == 3 and seen.count("two") == 3


def test_retries_zero_means_one_attempt(make_gateway, upstream):
    dead = f"http://127.0.0.1:{dead_port()}"
    gw = make_gateway({"services": {"users": {"upstream": [dead, upstream.url], "retries": 0}}})
    assert raw_request(gw.port, "GET", "/users/1").status == 502
