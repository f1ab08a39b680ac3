"""nginx's lines for offloaded requests: the entry each becomes, the lines counted lost,
and the socket the master binds for them."""

from __future__ import annotations

import json
import os
import socket
import stat

import pytest

from gateway.offload.logs import LostLines, NotALine, decision, entry, parse
from gateway.serve import logsocket

pytestmark = pytest.mark.unit


def nginx_line(**fields) -> bytes:
    """A datagram as nginx sends it: syslog's header, then the JSON line."""
    line = {"service": "orders", "gateway": "", "status": "200", "request_time": "0.250",
            "msec": "1796454000.500", "method": "GET", "uri": "/orders/a%20b?key=secret",
            "client": "203.0.113.7", "body_bytes_sent": "42", "content_length": "",
            "upstream": "", "upstream_header_time": "", "answered": "", "error": "",
            "nginx_request_id": "n" * 32, **fields}
    return b"<190>Dec  5 10:00:00 gateway: " + json.dumps(line).encode()


def test_an_allowed_request_becomes_the_gateways_entry():
    told = {"id": "r-1", "service": "orders", "consumer": "acme", "key_id": "key_1",
            "span": ["ab" * 16, "cd" * 8, None, 1, True], "seq": "7.1"}
    line = parse(nginx_line(gateway=json.dumps(told), upstream="10.0.0.1:80, 10.0.0.2:80",
                            upstream_header_time="0.010, 0.200", content_length="12"))
    made = entry(line, decision(line))
    assert made["request_id"] == "r-1" and made["consumer"] == "acme"
    assert made["key_id"] == "key_1" and made["trace_id"] == "ab" * 16
    assert made["path"] == "/orders/a b"  # decoded, the query left out (keys travel there)
    assert made["upstream"] == "10.0.0.2:80" and made["upstream_ms"] == 200.0  # the last try
    assert made["duration_ms"] == 250.0 and made["bytes_sent"] == 42
    assert made["bytes_received"] == 12 and made["client_ip"] == "203.0.113.7"
    assert made["time"] == "2026-12-05T07:00:00.450+00:00"  # when the answer began
    assert "upstream_error" not in made


def test_what_nginx_answered_alone_keeps_its_own_request_id_and_error():
    down = parse(nginx_line(status="503", error="gateway_unavailable"))
    made = entry(down, decision(down))
    assert made["request_id"] == "n" * 32 and made["service"] == "orders"
    assert made["upstream"] is None and made["consumer"] is None
    failed = parse(nginx_line(status="502", error="connect", upstream="10.0.0.1:80",
                              gateway=json.dumps({"id": "r-2"})))
    assert entry(failed, decision(failed))["upstream_error"] == "connect"
    replayed = parse(nginx_line(status="429", answered="1", upstream="127.0.0.1:8000",
                                gateway=json.dumps({"id": "r-3", "consumer": "acme"})))
    made = entry(replayed, decision(replayed))
    assert made["upstream"] is None and made["consumer"] == "acme"  # the gateway answered


def test_a_datagram_that_is_not_a_line_is_refused():
    for datagram in (b"<190>Dec  5 10:00:00 gateway: hello", b"", b"[1, 2]"):
        with pytest.raises(NotALine):
            parse(datagram)
    assert decision({"gateway": "{not json"}) == {}


def test_a_gap_is_lost_only_after_its_wait_and_a_late_line_fills_it():
    lost = LostLines(after=10)
    lost.logged("7.1", now=0)
    lost.logged("7.4", now=1)  # 2 and 3 are missing since 1
    lost.logged("7.2", now=2)  # came late, but in time
    assert lost.expired(now=10.5) == 0
    assert lost.expired(now=11) == 1  # 3
    assert lost.expired(now=100) == 0  # counted once


def test_the_heartbeat_reveals_the_last_lines_of_a_burst():
    lost = LostLines(after=5)
    lost.logged("7.1", now=0)
    lost.decided(7, 3, now=1)  # the worker gave 2 and 3; no line after them came
    lost.logged("8.1", now=0)
    lost.decided(8, 2, now=1)  # another worker: 2
    lost.logged("8.1", now=2)  # (again: nothing changes)
    lost.decided(7, 3, now=3)  # the same heartbeat again: nothing new
    assert lost.expired(now=6) == 3  # 7.2, 7.3, 8.2
    lost.logged("bad", now=7)  # (not a number: ignored)
    assert lost.missing == {}


def test_a_new_reader_counts_each_worker_from_the_first_it_hears():
    lost = LostLines(after=5)
    lost.logged("7.5000", now=0)  # the worker decided 4,999 before this reader started
    lost.decided(8, 300, now=0)
    lost.logged("8.290", now=1)  # in flight across the switch: neither lost nor counted
    lost.logged("7.5002", now=1)
    assert lost.expired(now=100) == 1  # 7.5001 alone


def test_the_socket_replaces_a_stale_one_and_nginx_may_write_to_it(tmp_path):
    path = str(tmp_path / "run" / "nginx.sock")
    os.makedirs(os.path.dirname(path))
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    stale.bind(path)
    stale.close()  # a crashed gateway's
    channel = logsocket.bind(path)
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o666
        sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sender.sendto(b"hello", path)
        assert channel.recv(100) == b"hello"
        sender.close()
    finally:
        channel.close()
    grouped = logsocket.bind(str(tmp_path / "grouped.sock"), group="nogroup")
    try:
        info = os.stat(tmp_path / "grouped.sock")
        assert stat.S_IMODE(info.st_mode) == 0o660 and info.st_gid == 65534
    finally:
        grouped.close()


def test_the_socket_refuses_what_it_cannot_be_made_on_with_the_fix(tmp_path):
    plain = tmp_path / "a-file"
    plain.write_text("x")
    with pytest.raises(logsocket.LogSocketError, match="exists and is not a socket"):
        logsocket.bind(str(plain))
    with pytest.raises(logsocket.LogSocketError, match="GATEWAY_LOG_SOCKET_GROUP: no group "
                                                       "named 'no-such-group'"):
        logsocket.bind(str(tmp_path / "g.sock"), group="no-such-group")
    with pytest.raises(logsocket.LogSocketError, match="--log-socket PATH"):
        logsocket.bind(str(plain / "under-a-file.sock"))


def test_the_master_and_gateway_nginx_default_to_the_same_socket():
    from gateway.offload import decisions

    # (the master imports nothing of the gateway, so it spells the default itself)
    assert logsocket.DEFAULT == decisions.DEFAULT_LOG_SOCKET == "/run/gateway/nginx.sock"
    assert logsocket.ENV == decisions.LOG_SOCKET_ENV


def test_the_start_warns_of_host_settings_that_hold_too_few_lines():
    usual = {"net.unix.max_dgram_qlen": "10", "net.core.wmem_default": "212992"}
    advice = logsocket.queue_advice(usual.__getitem__)
    assert advice.startswith("net.unix.max_dgram_qlen is 10, net.core.wmem_default is "
                             "212992: nginx drops")
    assert "sysctl -w net.unix.max_dgram_qlen=4096 net.core.wmem_default=1048576" in advice
    sized = {"net.unix.max_dgram_qlen": "4096", "net.core.wmem_default": "1048576"}
    assert logsocket.queue_advice(sized.__getitem__) is None
    assert logsocket.queue_advice(lambda name: (_ for _ in ()).throw(OSError())) is None
