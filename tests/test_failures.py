"""A failure in one request never harms the next."""

from __future__ import annotations

import json
import socket
import time

import pytest

from tests.conftest import assert_cut_short, raw_request


@pytest.fixture
def gw(make_gateway, upstream):
    return make_gateway({"services": {"users": {"upstream": upstream.url, "retries": 0}}})


@pytest.mark.fault
def test_upstream_dying_mid_body_cuts_the_answer_short(gw, upstream, caplog):
    assert_cut_short(gw.port, "/users/truncated")
    # the next request, on the same pool, is fine
    again = raw_request(gw.port, "GET", "/users/1")
    assert again.status == 200 and json.loads(again.body)["method"] == "GET"


@pytest.mark.fault
def test_client_leaving_mid_download_frees_the_upstream_connection(gw, upstream):
    sock = socket.create_connection(("127.0.0.1", gw.port))
    sock.sendall(b"GET /users/bytes?size=50000000 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    sock.close()  # gone after the first bytes of 50 MB
    pool = gw.app.extensions["gateway"].upstreams["users"].targets[0].pool
    deadline = time.monotonic() + 10
    while pool.pool.qsize() < pool.pool.maxsize and time.monotonic() < deadline:
        time.sleep(0.05)
    # the half-read connection was closed and its slot given back to the pool
    assert pool.pool.qsize() == pool.pool.maxsize
    for _ in range(3):
        assert raw_request(gw.port, "GET", "/users/1").status == 200


def test_bad_requests_get_4xx_and_the_next_one_works(gw):
    for target in ("/users/%", "/users/%zz", "/users/" + "a" * 5000):
        status = raw_request(gw.port, "GET", target).status
        assert status < 500, target
    assert raw_request(gw.port, "GET", "/users/1").status == 200
