"""Offload (issue 34): nginx carries an offloaded service's bytes, the gateway's chain decides.

The same config runs twice: behind the README's nginx (deploy/nginx.conf, the gateway
proxying) and behind ``gateway nginx``'s output (nginx proxying, the gateway deciding).
The same table of requests gets the same answers from both."""

from __future__ import annotations

import http.client
import json

import pytest
import yaml
from click.testing import CliRunner

from gateway.cli import main as cli
from gateway.config import hash_key
from tests.conftest import free_port
from tests.test_nginx import Nginx, start_nginx, stop_nginx

pytestmark = pytest.mark.nginx

#: the headers that must be the same with and without offload (Retry-After within a
#: second: the two are asked a few ms apart, and a second may turn between them)
COMPARED = ("Content-Type", "WWW-Authenticate", "RateLimit-Limit", "RateLimit-Remaining",
            "X-Quota-Limit", "X-Quota-Remaining", "Access-Control-Allow-Origin",
            "Access-Control-Allow-Methods")


ISSUER = "https://login.example.com/realms/shop"


def config(upstream_url: str, offload: bool, jwks_uri: str = "http://127.0.0.1:9/jwks") -> dict:
    return {"trusted_proxies": 1,
            "consumers": {"acme": {"keys": [hash_key("acme-key")], "quota": "5/month"},
                          "other": {"keys": [hash_key("other-key")], "services": ["users"]}},
            "issuers": {"shop": {"issuer": ISSUER, "audiences": ["shop-api"],
                                 "jwks_uri": jwks_uri}},
            "services": {
                "orders": {"upstream": upstream_url, "auth": ["api_key", "jwt"],
                           "scopes": ["orders:read"], "claims_to_headers": {"X-User": "sub"},
                           # an hour: the table never straddles two windows (a minute's
                           # turn between its two runs would count them apart)
                           "offload": offload, "rate_limit": "4/hour", "max_body_bytes": 100,
                           "deny_ips": ["127.0.0.9"],
                           "cors": {"origins": ["http://shop.example"]}},
                "users": upstream_url}}


@pytest.fixture
def issuer():
    from gateway.testing.tokens import TestIssuer

    made = TestIssuer()
    yield made
    made.close()


def token(issuer, scopes: list[str]) -> dict:
    import time
    signed = issuer.token(iss=ISSUER, aud="shop-api", sub="ada", scopes=scopes, claims={},
                          now=time.time(), expires_in=300)
    return {"Authorization": f"Bearer {signed}"}


class GeneratedNginx:
    """nginx running what ``gateway nginx`` printed for a config, in front of a gateway."""

    def __init__(self, config_path, gateway_port: int, tmp_path, log_socket=None):
        self.port = free_port()
        printed = CliRunner().invoke(cli, [
            "nginx", "--config", str(config_path), "--listen", f"127.0.0.1:{self.port}",
            "--gateway", f"127.0.0.1:{gateway_port}",
            "--log-socket", str(log_socket or globals()["log_socket"](tmp_path))])
        assert printed.exit_code == 0, printed.output
        self.text = printed.stdout
        directory = tmp_path / f"generated-{self.port}"
        directory.mkdir()
        # a minimal nginx.conf around the block
        self.process = start_nginx("events {}\n" + self.text, self.port, directory)

    def stop(self) -> None:
        stop_nginx(self.process)


def log_socket(tmp_path):
    """The log socket's path for a test: in a directory nginx's workers (``nobody``) can
    reach (pytest's own are its user's alone)."""
    import os
    import tempfile

    found = tmp_path / "socket-dir"
    if not found.exists():
        directory = tempfile.mkdtemp(prefix="gateway-log-")
        os.chmod(directory, 0o755)
        found.symlink_to(directory)
    return str(found.resolve() / "nginx.sock")


def offloading_gateway(gunicorn_gateway, path, tmp_path, workers: int = 1, env=None):
    """The gateway on an offloading config, its log socket where GeneratedNginx sends
    its lines by default."""
    return gunicorn_gateway(str(path), workers=workers, env={
        "GATEWAY_LOG_SOCKET": log_socket(tmp_path), **(env or {})})


@pytest.fixture
def both(gunicorn_gateway, upstream, tmp_path, issuer):
    """(the gateway proxying behind the README's nginx, offloaded behind gateway nginx's)."""
    plain_gw = gunicorn_gateway(config(upstream.url, False, issuer.jwks_uri), workers=1)
    (tmp_path / "plain").mkdir()
    plain = Nginx(plain_gw.port, tmp_path / "plain")
    plain.gateway = plain_gw
    path = tmp_path / "offload.yaml"
    path.write_text(yaml.safe_dump(config(upstream.url, True, issuer.jwks_uri)))
    offload_gw = offloading_gateway(gunicorn_gateway, path, tmp_path)
    offloaded = GeneratedNginx(path, offload_gw.port, tmp_path)
    yield plain, offloaded, offload_gw
    plain.stop()
    offloaded.stop()


def ask(port: int, method: str, path: str, headers: dict | None = None, body: bytes | None = None,
        client: str = "127.0.0.5"):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30,
                                            source_address=(client, 0))
    try:
        connection.request(method, path, body=body, headers=headers or {})
        answer = connection.getresponse()
        return answer.status, {k: v for k, v in answer.getheaders()}, answer.read()
    finally:
        connection.close()


def comparable(answer) -> tuple:
    status, headers, body = answer
    shown: dict = {name: headers.get(name) for name in COMPARED}
    shown["has X-Request-ID"] = bool(headers.get("X-Request-ID"))
    shown["has Retry-After"] = "Retry-After" in headers
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if isinstance(document, dict) and "request_id" in document:  # the gateway's JSON
        assert document["request_id"] == headers.get("X-Request-ID")
        document = {k: v for k, v in document.items() if k != "request_id"}
    if isinstance(document, dict) and isinstance(document.get("headers"), dict):
        seen = document["headers"]  # the upstream's echo of what it received
        assert seen.get("x-request-id") == headers.get("X-Request-ID")
        document = {"method": document["method"], "raw_uri": document["raw_uri"],
                    "body_sha256": document["body_sha256"],
                    "upstream saw": {k: seen.get(k) for k in (
                        "x-consumer", "x-api-key", "authorization", "x-user",
                        "x-forwarded-proto", "content-type")},
                    # the client first (the gateway adds nginx as a hop: one hop fewer is fine)
                    "client": (seen.get("x-forwarded-for") or "").split(",")[0]}
    return status, shown, document


TABLE = [
    ("missing key", "GET", "/orders/1", {}, None),
    ("bad key", "GET", "/orders/1", {"X-API-Key": "wrong"}, None),
    ("forbidden consumer", "GET", "/orders/1", {"X-API-Key": "other-key"}, None),
    ("good GET", "GET", "/orders/1?x=1", {"X-API-Key": "acme-key"}, None),
    ("good POST with a body", "POST", "/orders/1", {"X-API-Key": "acme-key",
                                                    "Content-Type": "application/json"},
     b'{"n": 1}'),
    ("body too large", "POST", "/orders/1", {"X-API-Key": "acme-key"}, b"x" * 500),
    ("CORS preflight", "OPTIONS", "/orders/1", {"Origin": "http://shop.example",
                                                "Access-Control-Request-Method": "GET"}, None),
    ("good DELETE", "DELETE", "/orders/1", {"X-API-Key": "acme-key"}, None),
    ("over the rate limit", "GET", "/orders/1", {"X-API-Key": "acme-key"}, None),
    ("over the rate limit again", "GET", "/orders/1", {"X-API-Key": "acme-key"}, None),
    ("not offloaded", "GET", "/users/1", {}, None),
]


def test_the_same_requests_get_the_same_answers_with_and_without_offload(both, issuer):
    plain, offloaded, _ = both
    table = [*TABLE,
             ("a token", "GET", "/orders/2", token(issuer, ["orders:read"]), None, "127.0.0.5"),
             ("a token without the scope", "GET", "/orders/2", token(issuer, ["other"]), None,
              "127.0.0.5"),
             ("a denied address", "GET", "/orders/1", {"X-API-Key": "acme-key"}, None,
              "127.0.0.9")]
    for name, method, path, headers, body, *client in table:
        source = client[0] if client else "127.0.0.5"
        through_gateway = ask(plain.port, method, path, headers, body, source)
        through_nginx = ask(offloaded.port, method, path, headers, body, source)
        with_gateway, with_nginx = comparable(through_gateway), comparable(through_nginx)
        assert with_nginx == with_gateway, name
        if "Retry-After" in through_gateway[1]:
            assert abs(int(through_gateway[1]["Retry-After"])
                       - int(through_nginx[1]["Retry-After"])) <= 1, name
        assert with_gateway[0] == {"a token": 200, "a token without the scope": 403,
                                   "a denied address": 403}.get(name, with_gateway[0]), name


#: the access-log fields compared line by line (``bytes_sent`` where the body is the
#: gateway's own: an upstream's echo differs by its request id)
SAME_IN_THE_LOG = ("method", "path", "status", "service", "consumer", "issuer", "client_ip",
                   "bytes_received", "cache")


def test_nginx_lines_become_the_same_access_log_lines(both, issuer):
    plain, offloaded, offload_gw = both
    requests = [("GET", "/orders/1?x=1", {"X-API-Key": "acme-key"}, None),
                ("POST", "/orders/7", {"X-API-Key": "acme-key"}, b'{"n": 1}'),
                ("GET", "/orders/2", token(issuer, ["orders:read"]), None),
                ("GET", "/orders/1", {"X-API-Key": "wrong"}, None),
                ("GET", "/orders/1", {"X-API-Key": "other-key"}, None),
                ("POST", "/orders/1", {"X-API-Key": "acme-key"}, b"x" * 500)]
    answers = []
    for method, path, headers, body in requests:
        answers.append((ask(plain.port, method, path, headers, body),
                        ask(offloaded.port, method, path, headers, body)))
    with_gateway = {line["request_id"]: line
                    for line in plain.gateway.access_lines(len(requests))}
    with_nginx = {line["request_id"]: line for line in offload_gw.access_lines(len(requests))}
    assert len(with_nginx) == len(requests), offload_gw.log()
    for request, (through_gateway, through_nginx) in zip(requests, answers, strict=True):
        proxied = with_gateway[through_gateway[1]["X-Request-ID"]]
        carried = with_nginx[through_nginx[1]["X-Request-ID"]]
        assert list(carried) == list(proxied), request
        assert {k: carried[k] for k in SAME_IN_THE_LOG} == \
            {k: proxied[k] for k in SAME_IN_THE_LOG}, request
        assert (carried["upstream"] is None) == (proxied["upstream"] is None), request
        assert (carried["upstream_ms"] is None) == (proxied["upstream_ms"] is None), request
        if proxied["upstream"] is None:  # the gateway's own JSON answer: the same bytes
            assert carried["bytes_sent"] == proxied["bytes_sent"], request
        else:
            assert carried["upstream"] == proxied["upstream"].split("//")[1], request
            assert carried["bytes_sent"] == len(through_nginx[2]), request
        assert 0 <= carried["duration_ms"] < 60_000


def test_an_upstream_down_answers_in_the_gateways_json(both, upstream):
    plain, offloaded, _ = both
    upstream.stop()
    for port in (plain.port, offloaded.port):
        status, headers, body = ask(port, "GET", "/orders/1", {"X-API-Key": "acme-key"})
        assert status == 502 and json.loads(body)["error"] == "bad_gateway"
        assert headers["Content-Type"] == "application/json"


def test_the_gateway_down_is_a_503_in_its_json_and_the_upstream_is_never_reached(both,
                                                                                 upstream):
    _, offloaded, offload_gw = both
    offload_gw.stop()
    hits = upstream.app.hits
    status, headers, body = ask(offloaded.port, "GET", "/orders/1", {"X-API-Key": "acme-key"})
    assert status == 503 and json.loads(body)["error"] == "gateway_unavailable"
    assert json.loads(body)["request_id"] == headers["X-Request-ID"]
    assert upstream.app.hits == hits  # fail closed


def test_gateway_nginx_refuses_what_nginx_cannot_honour(tmp_path, upstream):
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump({"services": {"orders": {
        "upstream": upstream.url, "offload": True, "cache": {"ttl": 5},
        "transform": {"request": {"headers": {"add": {"X-A": "b"}}}}}}}))
    for command in ("nginx", "check"):
        result = CliRunner().invoke(cli, [command, "--config", str(path)])
        assert result.exit_code == 1
        assert "services.orders: offload: true, but cache, transform: nginx carries" in \
            result.stderr
    path.write_text(yaml.safe_dump({"services": {"orders": {"upstream": upstream.url,
                                                            "offload": True}}}))
    result = CliRunner().invoke(cli, ["check", "--config", str(path)])
    assert result.exit_code == 0 and "offloaded" in result.stdout


def test_check_says_when_the_nginx_file_no_longer_matches(tmp_path, upstream):
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config(upstream.url, offload=True)))
    written = tmp_path / "offload.conf"
    written.write_text(CliRunner().invoke(cli, ["nginx", "--config", str(path)]).stdout)
    same = CliRunner().invoke(cli, ["check", "--config", str(path), "--nginx-conf", str(written)])
    assert same.exit_code == 0 and "warning: nginx" not in same.stderr
    changed = config(upstream.url, offload=True)
    changed["services"]["orders"]["rate_limit"] = "5/minute"
    path.write_text(yaml.safe_dump(changed))
    moved = CliRunner().invoke(cli, ["check", "--config", str(path), "--nginx-conf",
                                     str(written)])
    assert moved.exit_code == 0
    assert f"warning: nginx: {written} no longer matches {path}" in moved.stderr


def test_only_nginx_may_ask_and_a_decision_is_neither_logged_nor_counted(upstream, monkeypatch):
    import os

    from gateway.app import create_app
    from gateway.telemetry import accesslog

    lines: list[str] = []
    monkeypatch.setattr(accesslog, "sink", lines.append)
    client = create_app(config(upstream.url, offload=True)).test_client()
    asked = {"X-Original-Method": "GET", "X-Original-URI": "/orders/1",
             "X-API-Key": "acme-key"}
    for path in ("/_gateway/offload/decide", "/_gateway/offload/answer"):
        outside = client.get(path, headers=asked, environ_base={"REMOTE_ADDR": "203.0.113.9"})
        assert outside.status_code == 404
    counted = 'gateway_requests_total{method="GET",service="orders",status="200"}'

    def count() -> float:  # (the metrics are the process's: other tests counted too)
        found = [line.split()[-1] for line in client.get("/metrics").text.splitlines()
                 if line.startswith(counted)]
        return float(found[0]) if found else 0.0
    before = count()
    decided = client.get("/_gateway/offload/decide", headers=asked,
                         environ_base={"REMOTE_ADDR": "127.0.0.1"}, buffered=True)
    assert decided.status_code == 200 and decided.headers["X-Gateway-Up-X-Consumer"] == "acme"
    assert decided.headers["X-Gateway-Down-X-Quota-Remaining"] == "4"
    assert lines == []
    assert count() == before
    client.get("/orders/1", headers={"X-API-Key": "acme-key"}, buffered=True)
    assert count() == before + 1  # (the counter does count a request the gateway proxies)
    # each decision is numbered for the log reader's count of lost lines, but a
    # WebSocket's or a stream's (its line may come hours later)
    told = json.loads(decided.headers["X-Gateway-Log"])
    assert told["consumer"] == "acme" and told["service"] == "orders"
    assert told["id"] == decided.headers["X-Gateway-Down-X-Request-ID"]
    assert told["seq"].startswith(f"{os.getpid()}.")
    for long_lived in ({"X-Original-Upgrade": "websocket"}, {"Accept": "text/event-stream"}):
        streamed = client.get("/_gateway/offload/decide", headers={**asked, **long_lived},
                              environ_base={"REMOTE_ADDR": "127.0.0.1"})
        assert "seq" not in json.loads(streamed.headers["X-Gateway-Log"]), long_lived


def test_a_stream_and_a_websocket_pass_through_nginx(gunicorn_gateway, upstream, tmp_path):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    from tests.ws_upstream import WebSocketUpstream

    chat = WebSocketUpstream()
    try:
        settings = config(upstream.url, offload=True)
        settings["services"]["chat"] = {"upstream": chat.url, "auth": "api_key",
                                        "websocket": True, "offload": True}
        path = tmp_path / "offload.yaml"
        path.write_text(yaml.safe_dump(settings))
        gw = offloading_gateway(gunicorn_gateway, path, tmp_path)
        nginx = GeneratedNginx(path, gw.port, tmp_path)
        try:
            status, headers, body = ask(nginx.port, "GET", "/orders/sse?count=3&every=0.05",
                                        {"X-API-Key": "acme-key"})
            assert status == 200 and headers["Content-Type"] == "text/event-stream"
            assert body.count(b"data: event") == 3
            url = f"ws://127.0.0.1:{nginx.port}/chat/echo"
            with connect(url, additional_headers={"X-API-Key": "acme-key"},
                         open_timeout=5) as ws:
                ws.send("hello")
                assert ws.recv(timeout=5) == "hello"
            seen = chat.handshakes[-1][1]
            assert seen["x-consumer"] == "acme" and "x-api-key" not in seen
            with pytest.raises(InvalidStatus) as refused:
                connect(url, open_timeout=5)
            assert refused.value.response.status_code == 401
            # each is logged when it ends, as the gateway would log it
            lines = wait_for(lambda: [line for line in gw.access_lines(0, timeout=0)
                                      if line["status"] in (101, 401) or
                                      line["path"] == "/orders/sse"]
                             if len(gw.access_lines(0, timeout=0)) >= 3 else None)
            assert lines, gw.log()
            assert {(line["service"], line["status"]) for line in lines} == {
                ("orders", 200), ("chat", 101), ("chat", 401)}
            (relayed,) = [line for line in lines if line["status"] == 101]
            assert relayed["consumer"] == "acme" and relayed["bytes_sent"] > 0
        finally:
            nginx.stop()
    finally:
        chat.stop()


# -- the log socket under load -----------------------------------------------------------

@pytest.fixture
def host_settings():
    """``set(**settings)``: sysctl settings (``max_dgram_qlen=10``) for the sockets made
    after it, put back after the test: the log socket's queue (read when the gateway
    binds it) and nginx's send buffer (read when its workers open the syslog socket)."""
    from pathlib import Path

    names = {"max_dgram_qlen": "net/unix/max_dgram_qlen", "wmem_default": "net/core/wmem_default"}
    before = {name: Path("/proc/sys", path).read_text().strip() for name, path in names.items()}

    def set_settings(**settings: int) -> None:
        for name, value in settings.items():
            try:
                Path("/proc/sys", names[name]).write_text(str(value))
            except OSError as error:
                pytest.fail(f"cannot set {names[name]} ({error}): the offload log tests need "
                            "root, or the deployment guide's sysctl line run first")
    yield set_settings
    for name, value in before.items():
        Path("/proc/sys", names[name]).write_text(value)


def bulk_config(upstream_url: str, database: str) -> dict:
    """A full chain on an offloaded service: key, quota, usage records."""
    return {"database": database, "usage": {"flush_seconds": 0.5},
            "consumers": {"acme": {"keys": [hash_key("acme-key")]}},
            "services": {"bulk": {"upstream": upstream_url, "auth": "api_key",
                                  "rate_limit": "1000000/hour", "offload": True}}}


def offloaded_bulk(gunicorn_gateway, upstream, tmp_path, workers: int = 2, env=None):
    path = tmp_path / "bulk.yaml"
    path.write_text(yaml.safe_dump(bulk_config(upstream.url,
                                               f"sqlite:///{tmp_path / 'usage.db'}")))
    upgraded = CliRunner().invoke(cli, ["db", "upgrade", "--config", str(path)])
    assert upgraded.exit_code == 0, upgraded.output
    gateway = offloading_gateway(gunicorn_gateway, path, tmp_path, workers=workers, env=env)
    return path, gateway, GeneratedNginx(path, gateway.port, tmp_path)


def send(port: int, count: int, connections: int = 8) -> dict[int, int]:
    """``count`` GETs with acme's key over ``connections`` keep-alive connections:
    how many got each status."""
    import threading
    from collections import Counter

    statuses: Counter = Counter()
    lock = threading.Lock()

    def one_connection(share: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        seen: Counter = Counter()
        for n in range(share):
            connection.request("GET", f"/bulk/item/{n}", headers={"X-API-Key": "acme-key"})
            answer = connection.getresponse()
            answer.read()
            seen[answer.status] += 1
        connection.close()
        with lock:
            statuses.update(seen)
    threads = [threading.Thread(target=one_connection,
                                args=(count // connections + (i < count % connections),))
               for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return dict(statuses)


def metric(gateway_port: int, name: str, **labels) -> float:
    """The sum of a metric's samples with these labels, read from the gateway's /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    text = ask(gateway_port, "GET", "/metrics", client="127.0.0.1")[2].decode()
    return sum(sample.value for family in text_string_to_metric_families(text)
               for sample in family.samples
               if sample.name == name and all(sample.labels.get(k) == v
                                              for k, v in labels.items()))


def wait_for(predicate, timeout: float = 60, every: float = 0.25):
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every)


def test_twenty_thousand_offloaded_requests_lose_no_log_line(gunicorn_gateway, upstream,
                                                             tmp_path, host_settings):
    from gateway.serve.logsocket import HOST_SETTINGS

    # as the deployment guide sizes them
    host_settings(max_dgram_qlen=HOST_SETTINGS["net.unix.max_dgram_qlen"],
                  wmem_default=HOST_SETTINGS["net.core.wmem_default"])
    path, gateway, nginx = offloaded_bulk(gunicorn_gateway, upstream, tmp_path)
    try:
        assert send(nginx.port, 20_000) == {200: 20_000}

        def logged() -> list[dict]:
            lines = [line for line in gateway.access_lines(0, timeout=0)
                     if line.get("service") == "bulk"]
            return lines if len(lines) >= 20_000 else []
        lines = wait_for(logged) or [line for line in gateway.access_lines(0, timeout=0)
                                     if line.get("service") == "bulk"]
        assert len(lines) == 20_000
        assert len({line["request_id"] for line in lines}) == 20_000
        assert {line["consumer"] for line in lines} == {"acme"}
        assert metric(gateway.port, "gateway_requests_total", service="bulk",
                      status="200") == 20_000
        assert metric(gateway.port, "gateway_offload_log_lines_total", service="bulk") == 20_000
        assert metric(gateway.port, "gateway_request_duration_seconds_count",
                      service="bulk") == 20_000
        assert metric(gateway.port, "gateway_offload_log_lost_total") == 0

        def usage() -> int:
            shown = CliRunner().invoke(cli, ["usage", "--config", str(path), "--service",
                                             "bulk", "--format", "json"])
            rows = json.loads(shown.stdout) if shown.exit_code == 0 else []
            return sum(row["requests"] for row in rows if row["consumer"] == "acme")
        assert wait_for(lambda: usage() == 20_000) or usage() == 20_000
    finally:
        nginx.stop()


def test_lines_nginx_could_not_send_are_counted_lost(gunicorn_gateway, upstream, tmp_path,
                                                     host_settings):
    import os
    import re
    import signal

    host_settings(max_dgram_qlen=10)  # a host nobody sized: nginx drops what does not fit
    _, gateway, nginx = offloaded_bulk(gunicorn_gateway, upstream, tmp_path, workers=1,
                                       env={"GATEWAY_OFFLOAD_LOST_AFTER": "1"})
    try:
        started = wait_for(lambda: re.search(r"offload log reader on \S+ \(pid: (\d+)\)",
                                             gateway.log()))
        assert started, gateway.log()
        reader = int(started.group(1))
        os.kill(reader, signal.SIGSTOP)  # it reads nothing: the queue fills
        try:
            assert send(nginx.port, 200, connections=1) == {200: 200}
        finally:
            os.kill(reader, signal.SIGCONT)

        def settled() -> tuple[float, float] | None:
            logged = metric(gateway.port, "gateway_offload_log_lines_total", service="bulk")
            lost = metric(gateway.port, "gateway_offload_log_lost_total")
            return (logged, lost) if logged + lost == 200 else None
        counts = wait_for(settled, timeout=30)
        assert counts is not None, (metric(gateway.port, "gateway_offload_log_lines_total"),
                                    metric(gateway.port, "gateway_offload_log_lost_total"))
        logged, lost = counts
        assert 0 < logged <= 20 and lost >= 180
        assert f"{int(lost)} offloaded request(s) decided but never logged" in gateway.log() \
            or "decided but never logged" in gateway.log()
    finally:
        nginx.stop()


def test_the_decision_begins_the_span_and_nginx_line_ends_it(gunicorn_gateway, upstream,
                                                             tmp_path, serve):
    from tests.otlp_receiver import OtlpReceiver

    receiver = serve(OtlpReceiver())
    incoming_trace, incoming_span = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    settings = config(upstream.url, offload=True)
    settings["tracing"] = {"exporter": "otlp", "endpoint": receiver.url,
                           "service_name": "edge"}
    path = tmp_path / "traced.yaml"
    path.write_text(yaml.safe_dump(settings))
    gateway = offloading_gateway(gunicorn_gateway, path, tmp_path)
    nginx = GeneratedNginx(path, gateway.port, tmp_path)
    try:
        status, headers, body = ask(nginx.port, "GET", "/orders/3", {
            "X-API-Key": "acme-key", "traceparent": f"00-{incoming_trace}-{incoming_span}-01"})
        assert status == 200
        (server,) = receiver.app.wait_for(lambda s: s["kind"] == "server", timeout=30)
        assert server["trace_id"] == incoming_trace and server["parent_id"] == incoming_span
        assert server["name"] == "GET orders" and server["service"] == "edge"
        assert server["attributes"]["http.response.status_code"] == 200
        assert server["attributes"]["gateway.request_id"] == headers["X-Request-ID"]
        assert server["attributes"]["gateway.consumer"] == "acme"
        # the upstream's parent is the request's span, as nginx sent it
        sent = json.loads(body)["headers"]["traceparent"]
        assert sent == f"00-{incoming_trace}-{server['span_id']}-01"
        (line,) = [line for line in gateway.access_lines(1) if line["service"] == "orders"]
        assert line["trace_id"] == incoming_trace
        # a refusal's span ends too, with its status
        ask(nginx.port, "GET", "/orders/3", {"X-API-Key": "wrong"})
        (refused,) = receiver.app.wait_for(
            lambda s: s["attributes"].get("http.response.status_code") == 401, timeout=30)
        assert refused["kind"] == "server" and refused["trace_id"] != incoming_trace
    finally:
        nginx.stop()


def test_the_log_reader_follows_a_reload_and_comes_back_when_killed(gunicorn_gateway,
                                                                      upstream, tmp_path):
    import os
    import re
    import signal

    path = tmp_path / "offload.yaml"
    path.write_text(yaml.safe_dump(config(upstream.url, offload=True)))
    gateway = offloading_gateway(gunicorn_gateway, path, tmp_path)
    nginx = GeneratedNginx(path, gateway.port, tmp_path)

    def readers() -> list[int]:
        return [int(pid) for pid in re.findall(r"offload log reader on \S+ \(pid: (\d+)\)",
                                               gateway.log())]

    def logged(request_id: str) -> bool:
        return any(line.get("request_id") == request_id
                   for line in gateway.access_lines(0, timeout=0))
    try:
        assert wait_for(lambda: len(readers()) == 1), gateway.log()
        sent = []
        for step in ("before", "reload", "kill"):
            if step == "reload":
                os.kill(gateway.process.pid, signal.SIGHUP)
                assert wait_for(lambda: len(readers()) == 2), gateway.log()
            elif step == "kill":
                os.kill(readers()[-1], signal.SIGKILL)
                assert wait_for(lambda: len(readers()) == 3), gateway.log()
                assert "the offload log reader (pid" in gateway.log()
            status, headers, _ = ask(nginx.port, "GET", "/orders/1", {"X-API-Key": "acme-key",
                                                                       "X-Request-ID": step})
            assert status == 200 and headers["X-Request-ID"] == step
            sent.append(step)
            assert wait_for(lambda step=step: logged(step), timeout=15), (step, gateway.log())
        assert len(set(readers())) == 3
        # the one started again hears its stop signal (its starter blocks every signal)
        from pathlib import Path

        blocked = [line for line in Path(f"/proc/{readers()[-1]}/status").read_text()
                   .splitlines() if line.startswith("SigBlk:")]
        assert int(blocked[0].split()[1], 16) & (1 << (signal.SIGTERM - 1)) == 0
    finally:
        nginx.stop()


def test_a_chunked_body_over_the_limit_is_refused_the_same_way(both, upstream):
    plain, offloaded, _ = both
    answers = []
    for port in (offloaded.port, plain.port):
        hits = upstream.app.hits
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("POST", "/orders/1", body=iter([b"x" * 60, b"y" * 60]),
                           headers={"X-API-Key": "acme-key"}, encode_chunked=True)
        answer = connection.getresponse()
        answers.append((answer.status, answer.getheader("Content-Type"),
                        json.loads(answer.read()), upstream.app.hits - hits))
        connection.close()
    (status_nginx, kind_nginx, carried, reached), (status, kind, proxied, _) = answers
    assert status == status_nginx == 413 and kind == kind_nginx == "application/json"
    assert proxied["error"] == carried["error"] == "body_too_large"
    # nginx reads the whole body before the upstream sees a byte of it, and stops at the
    # limit: the length it never read goes unsaid
    assert reached == 0
    assert carried["message"] == "the body is over the limit; this route takes at most 100"
    # (the gateway streams a chunked body and cuts it off at the limit, unless nginx in
    # front had the whole of it in hand and sent its length)
    assert proxied["message"] in ("the body is 120 bytes; this route takes at most 100",
                                  "The data value transmitted exceeds the capacity limit.")


def test_gateway_serve_makes_the_log_socket_it_is_told_and_removes_it_at_the_end(
        gunicorn_gateway, upstream, tmp_path):
    import os
    import re
    import stat

    path = tmp_path / "offload.yaml"
    path.write_text(yaml.safe_dump(config(upstream.url, offload=True)))
    chosen = log_socket(tmp_path).replace("nginx.sock", "chosen.sock")
    gateway = gunicorn_gateway(str(path), workers=1, serve=True,
                               serve_args=("--log-socket", chosen))
    assert wait_for(lambda: re.search(rf"offload log reader on {re.escape(chosen)} ",
                                      gateway.log())), gateway.log()
    assert stat.S_ISSOCK(os.stat(chosen).st_mode)
    assert stat.S_IMODE(os.stat(chosen).st_mode) == 0o666
    gateway.stop()
    assert not os.path.exists(chosen)
