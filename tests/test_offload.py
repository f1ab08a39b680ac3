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

    def __init__(self, config_path, gateway_port: int, tmp_path):
        self.port = free_port()
        printed = CliRunner().invoke(cli, [
            "nginx", "--config", str(config_path), "--listen", f"127.0.0.1:{self.port}",
            "--gateway", f"127.0.0.1:{gateway_port}"])
        assert printed.exit_code == 0, printed.output
        self.text = printed.stdout
        directory = tmp_path / "generated"
        directory.mkdir()
        # a minimal nginx.conf around the block
        self.process = start_nginx("events {}\n" + self.text, self.port, directory)

    def stop(self) -> None:
        stop_nginx(self.process)


@pytest.fixture
def both(gunicorn_gateway, upstream, tmp_path, issuer):
    """(the gateway proxying behind the README's nginx, offloaded behind gateway nginx's)."""
    plain_gw = gunicorn_gateway(config(upstream.url, False, issuer.jwks_uri), workers=1)
    (tmp_path / "plain").mkdir()
    plain = Nginx(plain_gw.port, tmp_path / "plain")
    path = tmp_path / "offload.yaml"
    path.write_text(yaml.safe_dump(config(upstream.url, True, issuer.jwks_uri)))
    offload_gw = gunicorn_gateway(str(path), workers=1)
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
        gw = gunicorn_gateway(str(path), workers=1)
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
        finally:
            nginx.stop()
    finally:
        chat.stop()
