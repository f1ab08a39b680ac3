"""``services.<name>.tls``: private CAs, client certificates and names for https:// upstreams.

The upstream is a real HTTPS server on loopback whose certificate comes from a
test CA (trustme), for the name ``orders.internal`` only, and which requires a
client certificate from a second test CA.
"""

from __future__ import annotations

import json
import ssl
import threading

import pytest
from werkzeug.serving import make_server

from gateway.config import ConfigError, parse_config
from tests.conftest import raw_request, wait_for
from tests.upstream import UpstreamApp


class Pki:
    """The upstream's CA and certificate, and the CA that signs gateway client certificates."""

    def __init__(self, directory):
        import trustme
        self.server_ca = trustme.CA()
        self.client_ca = trustme.CA()
        self.directory = directory
        self.server_cert = self.server_ca.issue_cert("orders.internal")
        self.client_cert = self.client_ca.issue_cert("gateway.internal")
        self.ca_file = self.write("ca.pem", self.server_ca.cert_pem.bytes())
        self.other_ca_file = self.write("other-ca.pem", trustme.CA().cert_pem.bytes())
        self.cert_file = self.write("gateway.pem", self.client_cert.cert_chain_pems[0].bytes())
        self.key_file = self.write("gateway.key", self.client_cert.private_key_pem.bytes())

    def write(self, name: str, data: bytes) -> str:
        path = self.directory / name
        path.write_bytes(data)
        return str(path)


@pytest.fixture
def pki(tmp_path):
    return Pki(tmp_path)


@pytest.fixture
def tls_server(pki):
    """HTTPS on 127.0.0.1 with a certificate for orders.internal; client certificate required.
    Its ``app`` counts what reached it (a failed handshake never does)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    pki.server_cert.configure_cert(context)
    pki.client_ca.configure_trust(context)
    context.verify_mode = ssl.CERT_REQUIRED
    app = UpstreamApp("tls")
    server = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=context)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    server.url = f"https://127.0.0.1:{server.server_port}"
    yield server
    server.shutdown()


@pytest.fixture
def tls_upstream(tls_server):
    return tls_server.url


def service(url: str, **tls) -> dict:
    return {"services": {"orders": {"upstream": url, "tls": tls, "retries": 0}}}


def test_mutual_tls_with_a_private_ca_and_a_server_name(make_gateway, pki, tls_upstream):
    gw = make_gateway(service(tls_upstream, ca_file=pki.ca_file, cert_file=pki.cert_file,
                              key_file=pki.key_file, server_name="orders.internal"))
    answer = raw_request(gw.port, "GET", "/orders/echo")
    assert answer.status == 200, answer.body
    assert json.loads(answer.body)["upstream"] == "tls"


def test_probes_the_canary_and_the_mirror_use_the_services_tls(make_gateway, pki, tls_server):
    """Every https call of the service: a call without the client certificate
    would fail its handshake and never reach the upstream's app."""
    url = tls_server.url
    settings = {"ca_file": pki.ca_file, "cert_file": pki.cert_file, "key_file": pki.key_file,
                "server_name": "orders.internal"}
    gw = make_gateway({"services": {"orders": {
        "upstream": url, "tls": settings, "retries": 0,
        "health_check": {"path": "/healthz", "interval": 1, "unhealthy_threshold": 1},
        "canary": {"upstream": url, "weight": 100},
        "mirror": {"upstream": url}}}})
    assert wait_for(lambda: tls_server.app.probes >= 1, timeout=5)
    answer = raw_request(gw.port, "GET", "/orders/echo")
    assert answer.status == 200, answer.body
    # the canary's answer, and the mirror's copy beside it
    assert wait_for(lambda: tls_server.app.hits == 2, timeout=5)


@pytest.mark.parametrize("tls, why", [
    ({"server_name": "orders.internal"}, "no client certificate"),
    ({"server_name": "orders.internal", "ca_file": "other"}, "a CA that did not sign it"),
    ({}, "the address is not the certificate's name"),
])
def test_a_failed_handshake_is_502_never_500(gunicorn_gateway, pki, tls_upstream, tls, why):
    settings = {"ca_file": pki.ca_file, "cert_file": pki.cert_file, "key_file": pki.key_file}
    if why == "no client certificate":
        del settings["cert_file"], settings["key_file"]
    if tls.get("ca_file") == "other":
        settings["ca_file"] = pki.other_ca_file
    settings.update({k: v for k, v in tls.items() if k != "ca_file"})
    gw = gunicorn_gateway(service(tls_upstream, **settings), workers=1)
    answer = raw_request(gw.port, "GET", "/orders/echo")
    assert answer.status == 502, (why, answer.body)
    assert json.loads(answer.body)["error"] == "bad_gateway"
    line = gw.access_lines(1)[-1]
    assert line["upstream_error"] == "tls", (why, line)
    # the next request is served as well as the first: nothing was left broken
    assert raw_request(gw.port, "GET", "/orders/echo").status == 502


def test_tls_mistakes_are_config_errors_with_their_key_path(pki, tmp_path):
    not_pem = tmp_path / "notes.txt"
    not_pem.write_text("hello")
    cases = {
        "services.orders.tls": {"cert_file": pki.cert_file},
        "services.orders.tls.ca_file": {"ca_file": str(tmp_path / "missing.pem")},
        "services.orders.tls.cert_file": {"cert_file": str(not_pem), "key_file": pki.key_file},
    }
    for path, tls in cases.items():
        with pytest.raises(ConfigError) as refused:
            parse_config(service("https://orders.internal", **tls))
        assert path in str(refused.value), str(refused.value)
    import trustme
    other_key = tmp_path / "other.key"  # a key that is not the certificate's
    other_key.write_bytes(trustme.CA().issue_cert("x.internal").private_key_pem.bytes())
    with pytest.raises(ConfigError) as refused:
        parse_config(service("https://orders.internal", cert_file=pki.cert_file,
                             key_file=str(other_key)))
    assert "services.orders.tls" in str(refused.value) and "key_file" in str(refused.value)


def test_check_warns_when_verification_is_off(tmp_path):
    from gateway.config.lint import config_warnings
    config = parse_config(service("https://orders.internal", verify=False))
    assert any("services.orders.tls.verify: false" in w for w in config_warnings(config, 1))
