"""``auth: jwt``: bearer tokens checked against a real (in-process) identity provider."""

from __future__ import annotations

import base64
import json
import threading
import time

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.config import ConfigError, hash_key, parse_config
from tests.conftest import wait_for
from tests.idp import IdentityProvider


@pytest.fixture
def idp(serve):
    provider = IdentityProvider()
    server = serve(provider)
    provider.url = server.url
    return provider


def issuer(idp, **extra) -> dict:
    return {"issuer": idp.issuer, "audiences": ["orders-api"], **extra}


@pytest.fixture
def gateway(make_gateway, upstream, idp):
    def build(issuer_extra: dict | None = None, **service):
        return make_gateway({
            "consumers": {"web": {"keys": [hash_key("web-key")]}},
            "issuers": {"corp": issuer(idp, **(issuer_extra or {}))},
            "services": {"orders": {"upstream": upstream.url, "auth": "jwt", **service}}})
    return build


def call(gw, token: str | None = None, path: str = "/orders/echo", method: str = "GET",
         **headers) -> requests.Response:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return requests.request(method, gw.url + path, headers=headers, timeout=10)


def test_a_valid_token_admits_and_names_the_consumer(gateway, idp):
    gw = gateway(claims_to_headers={"X-User-Id": "sub", "X-Tenant": "org.id",
                                    "X-Roles": "realm_access.roles"})
    token = idp.token({"org": {"id": "acme"}, "realm_access": {"roles": ["admin", "buyer"]}})
    answer = call(gw, token, **{"X-User-Id": "spoofed", "X-Consumer": "spoofed"})
    assert answer.status_code == 200, answer.text
    seen = answer.json()["headers"]
    assert seen["x-consumer"] == "corp:user-1"
    assert seen["x-user-id"] == "user-1" and seen["x-tenant"] == "acme"
    assert seen["x-roles"] == "admin, buyer"
    assert "authorization" not in seen  # forward_token: false


def test_forward_token_sends_the_verified_header(gateway, idp):
    gw = gateway(forward_token=True)
    token = idp.token()
    assert call(gw, token).json()["headers"]["authorization"] == f"Bearer {token}"


def test_es256_works_too(gateway, idp):
    assert call(gateway(), idp.token(alg="ES256")).status_code == 200


def test_a_missing_token_is_a_401_with_the_bearer_challenge(gateway):
    gw = gateway()
    for headers in ({}, {"Authorization": "Basic dXNlcjpwdw=="}, {"Authorization": "Bearer "}):
        answer = requests.get(f"{gw.url}/orders/echo", headers=headers)
        assert answer.status_code == 401 and answer.json()["error"] == "missing_token"
        assert answer.headers["WWW-Authenticate"] == 'Bearer realm="orders"'


def other_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.mark.hostile
def test_bad_tokens_are_refused_with_a_reason(gateway, idp, reliability):
    gw = gateway()
    public_pem = idp.rsa.public_key().public_bytes(
        encoding=__import__("cryptography.hazmat.primitives.serialization", fromlist=["x"]
                            ).Encoding.PEM,
        format=__import__("cryptography.hazmat.primitives.serialization", fromlist=["x"]
                          ).PublicFormat.SubjectPublicKeyInfo)
    unsigned = jwt.encode({"iss": idp.issuer, "aud": "orders-api", "exp": int(time.time()) + 60},
                          None, algorithm="none")
    cases = {
        "expired": idp.token(lifetime=-120),
        "wrong audience": idp.token(aud="billing-api"),
        "unknown issuer": idp.token(iss="https://evil.example/realms/corp"),
        "bad signature": idp.token(key=other_key()),
        "algorithm not allowed": unsigned,
        "no exp claim": idp.token(exp=None),
        "not yet valid": idp.token(nbf=int(time.time()) + 3600),
        "unknown key": idp.token(headers={"kid": "nope"}, key=other_key()),
        "unsupported critical header": idp.token(headers={"crit": ["b64"], "b64": False}),
        "encrypted tokens (JWE) are not accepted": "a.b.c.d.e",
        "malformed": "abc.def.ghi",
        "unknown issuer (empty claims)": "e30.e30.e30",
        "not a JWT": "opaque-token-but-no-introspection",
    }
    # HS256 signed with the issuer's public key as the secret: the key-confusion attack
    try:
        cases["algorithm not allowed (HS256)"] = jwt.encode(
            {"iss": idp.issuer, "aud": "orders-api", "exp": int(time.time()) + 60},
            public_pem, algorithm="HS256")
    except jwt.InvalidKeyError:
        pass  # PyJWT refuses to make it; nothing to send
    # a jku/jwk header pointing at an attacker's key is never followed
    attacker = other_key()
    cases["unknown key (jku)"] = idp.token(key=attacker, headers={
        "kid": "attacker", "jku": "http://127.0.0.1:9/jwks",
        "jwk": json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(attacker.public_key()))})
    for why, token in cases.items():
        answer = call(gw, token)
        assert answer.status_code == 401, (why, answer.text)
        body = answer.json()
        assert body["error"] == "invalid_token", why
        reason = why.split(" (")[0]
        assert f'error_description="{reason}' in answer.headers["WWW-Authenticate"], why
        assert token not in answer.text and token not in answer.headers["WWW-Authenticate"]
    reliability.tried(len(cases))


@pytest.mark.hostile
def test_garbage_tokens_never_give_a_500(gateway, idp, reliability):
    import os
    gw = gateway()
    junk = [base64.urlsafe_b64encode(os.urandom(n)).decode().rstrip("=") for n in (1, 30, 300)]
    junk += ["..", "a.b.c", "ey.ey.ey", "eyJhbGciOiJSUzI1NiJ9.%%%.x", "x" * 8000,
             "eyJhbGciOiJSUzI1NiIsImtpZCI6WzFdfQ.eyJpc3MiOnt9fQ.c2ln", "\u00e9" * 10]
    for token in junk:
        try:
            status = call(gw, token).status_code
        except (requests.exceptions.InvalidHeader, UnicodeEncodeError):
            continue
        assert status in (400, 401, 431), (token[:40], status)
    huge = requests.get(f"{gw.url}/orders/echo", headers={"Authorization": "Bearer " + "a" * 20000})
    assert huge.status_code in (400, 401, 431)
    reliability.tried(len(junk) + 1)


def test_a_token_from_one_issuer_never_passes_as_another(make_gateway, upstream, serve):
    a, b = IdentityProvider(), IdentityProvider()
    b.realm = "/realms/partner"
    for provider in (a, b):
        provider.url = serve(provider).url
    gw = make_gateway({"issuers": {"corp": issuer(a), "partner": issuer(b)},
                       "services": {"orders": {"upstream": upstream.url, "auth": "jwt",
                                               "issuers": ["corp"]}}})
    assert call(gw, a.token()).status_code == 200
    # B's key, A's name: the signature is checked with A's keys only
    forged = b.token(iss=a.issuer, headers={"kid": b.rsa_kid})
    assert call(gw, forged).status_code == 401
    # B's own token: B is not an issuer of this service; refused before any fetch
    before = dict(b.fetches)
    answer = call(gw, b.token())
    assert answer.status_code == 401 and "unknown issuer" in answer.headers["WWW-Authenticate"]
    assert b.fetches == before


def test_scopes_all_required_and_by_method(gateway, idp):
    gw = gateway(scopes={"GET": ["orders:read"], "POST": ["orders:write"], "*": ["orders:admin"]})
    reader = idp.token({"scope": "orders:read profile"})
    assert call(gw, reader).status_code == 200
    refused = call(gw, reader, method="POST")
    assert refused.status_code == 403 and refused.json()["error"] == "insufficient_scope"
    assert refused.headers["WWW-Authenticate"] == \
        'Bearer realm="orders", error="insufficient_scope", scope="orders:write"'
    writer = idp.token({"scope": None, "scp": ["orders:write"]})
    assert call(gw, writer, method="POST").status_code == 200
    assert call(gw, writer, method="DELETE").status_code == 403


def test_a_claim_with_control_characters_is_never_written_into_a_header(gateway, idp):
    gw = gateway(claims_to_headers={"X-User-Id": "sub"})
    answer = call(gw, idp.token(sub="user-1\r\nX-Injected: 1"))
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_token"


def test_an_idp_down_at_start_gives_503_until_it_is_back(gateway, idp):
    idp.down = True
    gw = gateway({"min_refetch_interval": 1})
    answer = call(gw, idp.token())
    assert answer.status_code == 503
    assert answer.json()["error"] == "identity_provider_unavailable"
    assert answer.headers["Retry-After"] == "1"
    # asked again after min_refetch_interval, and stale keys serving while a refresh
    # fails: on a moved clock in tests/unit/tokens/test_keys.py


def test_rotated_keys_are_picked_up_and_removed_ones_refused(gateway, idp):
    gw = gateway({"min_refetch_interval": 0})
    old = idp.token()
    assert call(gw, old).status_code == 200
    idp.rotate()
    assert call(gw, idp.token()).status_code == 200  # a new kid: refetched, no restart
    # the old key left the JWKS: a token it signed (not yet verified) no longer passes
    assert call(gw, _signed_with_old(idp, old)).status_code == 401


def _signed_with_old(idp, old_token: str) -> str:
    """A token the gateway has not seen, with the kid of the rotated-out key."""
    header = jwt.get_unverified_header(old_token)
    return idp.token(headers={"kid": header["kid"]}, key=other_key(), jti="never-seen")


def concurrently(count: int, send) -> list[int]:
    """``send()`` from ``count`` threads at once; the statuses they got."""
    statuses: list[int] = []
    clients = [threading.Thread(target=lambda: statuses.append(send())) for _ in range(count)]
    for client in clients:
        client.start()
    for client in clients:
        client.join(timeout=30)
    return statuses


def test_a_cold_gateway_waits_for_the_first_keys_instead_of_refusing(
        gunicorn_gateway, upstream, idp):
    """80 requests reach two fresh workers while their first JWKS fetch is in flight:
    each waits for it (none gets 503), and each worker fetched once."""
    idp.jwks_delay = 0.5
    gw = gunicorn_gateway({"issuers": {"corp": issuer(idp)},
                           "services": {"orders": {"upstream": upstream.url, "auth": "jwt"}}},
                          workers=2)
    token = idp.token()
    statuses = concurrently(80, lambda: call(gw, token).status_code)
    assert statuses == [200] * 80, sorted(set(statuses))
    assert idp.fetches["jwks"] <= 2  # one per worker


def test_a_cold_gateway_whose_first_fetch_fails_answers_503(gateway, idp):
    idp.down = True
    gw = gateway()
    token = idp.token()
    statuses = concurrently(10, lambda: call(gw, token).status_code)
    assert statuses == [503] * 10


def test_unknown_kids_cost_one_fetch_not_one_each(gateway, idp):
    gw = gateway()
    assert call(gw, idp.token()).status_code == 200
    fetched = idp.fetches["jwks"]
    forged = [idp.token(headers={"kid": f"unknown-{i}"}, key=other_key(), jti=str(i))
              for i in range(8)]
    statuses: list[int] = []
    clients = [threading.Thread(target=lambda t=t: statuses.append(call(gw, t).status_code))
               for t in forged * 10]
    for client in clients:
        client.start()
    for client in clients:
        client.join(timeout=30)
    assert statuses.count(401) == 80
    assert idp.fetches["jwks"] - fetched <= 1  # min_refetch_interval: 30 s


def test_opaque_tokens_are_introspected_and_cached(make_gateway, upstream, idp, monkeypatch):
    monkeypatch.setenv("CORP_SECRET", "s3cret")
    gw = make_gateway({"issuers": {"corp": issuer(idp, introspection={
        "client_id": "gateway", "client_secret_env": "CORP_SECRET"})},
        "services": {"orders": {"upstream": upstream.url, "auth": "jwt",
                                "scopes": ["orders:read"]}}})
    idp.active_tokens["opaque-1"] = {"active": True, "sub": "svc-7", "scope": "orders:read",
                                     "exp": int(time.time()) + 60}
    first = call(gw, "opaque-1")
    assert first.status_code == 200 and first.json()["headers"]["x-consumer"] == "corp:svc-7"
    assert call(gw, "opaque-1").status_code == 200
    assert idp.fetches["introspect"] == 1  # the second answer came from the cache
    assert idp.introspection_auth[0] == "Basic " + base64.b64encode(b"gateway:s3cret").decode()
    assert call(gw, "opaque-2").status_code == 401  # active: false
    idp.down = True
    failed = call(gw, "opaque-3")
    assert failed.status_code == 503 and failed.json()["error"] == "identity_provider_unavailable"


def test_an_api_key_or_a_token(make_gateway, upstream, idp):
    gw = make_gateway({"consumers": {"web": {"keys": [hash_key("web-key")]}},
                       "issuers": {"corp": issuer(idp)},
                       "services": {"orders": {"upstream": upstream.url,
                                               "auth": ["api_key", "jwt"],
                                               "cors": {"origins": ["https://app.example"]}}}})
    assert call(gw, **{"X-API-Key": "web-key"}).json()["headers"]["x-consumer"] == "web"
    assert call(gw, idp.token()).json()["headers"]["x-consumer"] == "corp:user-1"
    neither = call(gw)
    assert neither.status_code == 401
    assert "ApiKey" in neither.headers["WWW-Authenticate"]
    assert "Bearer" in neither.headers["WWW-Authenticate"]
    assert call(gw, **{"X-API-Key": "wrong"}).status_code == 401
    # a CORS preflight needs no credential
    preflight = requests.options(f"{gw.url}/orders/echo", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "GET"})
    assert preflight.status_code == 204


def test_refusals_are_counted_and_the_token_never_logged(gateway, idp, monkeypatch):
    from gateway.telemetry import accesslog
    lines: list[str] = []
    monkeypatch.setattr(accesslog, "sink", lines.append)
    from prometheus_client import REGISTRY

    def failures(reason: str) -> float:
        return REGISTRY.get_sample_value("gateway_auth_failures_total",
                                         {"service": "orders", "reason": reason}) or 0.0
    before = failures("invalid_token"), failures("missing_token")
    gw = gateway()
    token = idp.token(aud="other")
    call(gw, token)
    call(gw)
    good = idp.token()
    call(gw, good)
    assert (failures("invalid_token"), failures("missing_token")) == (before[0] + 1, before[1] + 1)
    deadline = time.monotonic() + 5
    while len(lines) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert json.loads(lines[-1])["issuer"] == "corp"
    for line in lines:
        assert token not in line and good not in line


@pytest.mark.parametrize("config, problem", [
    ({"issuers": {"corp": {"audiences": ["a"]}}}, "issuers.corp.issuer: is required"),
    ({"issuers": {"corp": {"issuer": "https://i", "audiences": []}}},
     "issuers.corp.audiences: expected at least one audience"),
    ({"issuers": {"corp": {"issuer": "https://i", "audiences": ["a"], "algorithms": ["none"]}}},
     "issuers.corp.algorithms: 'none' is never accepted"),
    ({"issuers": {"corp": {"issuer": "https://i", "audiences": ["a"], "algorithms": ["HS256"]}}},
     "issuers.corp: algorithms: HS256 need a shared secret"),
    ({"issuers": {"corp": {"issuer": "https://i", "audiences": ["a"]}},
      "services": {"o": {"upstream": "http://x", "auth": "jwt", "issuers": ["other"]}}},
     "services.o.issuers: 'other' is not an issuer (known: corp)"),
    ({"services": {"o": {"upstream": "http://x", "auth": "jwt"}}},
     "services.o.auth: jwt, but no issuers are configured"),
    ({"issuers": {"corp": {"issuer": "https://i", "audiences": ["a"]}},
      "services": {"o": {"upstream": "http://x", "auth": "jwt",
                         "claims_to_headers": {"X-Forwarded-For": "sub"}}}},
     "services.o.claims_to_headers: 'X-Forwarded-For' is a header the gateway writes itself"),
])
def test_config_mistakes_are_named(config, problem):
    config = {"services": {"o": "http://x"}, **config}
    with pytest.raises(ConfigError) as caught:
        parse_config(config)
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems


def test_hs256_only_for_an_issuer_with_a_shared_secret(make_gateway, upstream, idp, monkeypatch):
    monkeypatch.setenv("CORP_HMAC", "a-shared-secret-of-enough-length-32b")
    gw = make_gateway({"issuers": {"corp": issuer(idp, algorithms=["HS256"],
                                                  secret_env="CORP_HMAC")},
                       "services": {"orders": {"upstream": upstream.url, "auth": "jwt"}}})
    hs = idp.token(alg="HS256", key="a-shared-secret-of-enough-length-32b")
    assert call(gw, hs).status_code == 200
    wrong = idp.token(alg="HS256", key="another-secret-of-enough-length-32by")
    assert call(gw, wrong).status_code == 401
    assert call(gw, idp.token()).status_code == 401  # RS256: not in this issuer's list


def test_the_openapi_document_names_the_bearer_scheme(gateway):
    document = requests.get(f"{gateway().url}/openapi.json").json()
    assert document["components"]["securitySchemes"]["Bearer"] == {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    operation = document["paths"]["/orders/{path}"]["get"]
    assert operation["security"] == [{"Bearer": []}]


def test_an_aggregate_with_tokens_sends_the_consumer_and_claims_on_every_call(
        make_gateway, serve, idp):
    from tests.backends import shop_backend
    users = serve(shop_backend("users"))
    gw = make_gateway({"issuers": {"corp": issuer(idp)},
                       "services": {"users": users.url},
                       "aggregates": [{"path": "/me/<user_id>", "auth": "jwt",
                                       "claims_to_headers": {"X-User-Id": "sub"},
                                       "calls": {"user": {"service": "users",
                                                          "path": "/users/{user_id}"}}}]})
    assert call(gw, path="/me/1").status_code == 401
    answer = call(gw, idp.token(), path="/me/1")
    assert answer.status_code == 200 and answer.json()["user"]["name"] == "Ada"
    seen = users.app.config["SEEN"][-1]["headers"]
    assert seen["X-Consumer"] == "corp:user-1" and seen["X-User-Id"] == "user-1"
    assert "Authorization" not in seen


def test_a_token_asks_for_its_own_usage(gateway, idp):
    gw = gateway()
    assert call(gw, idp.token(sub="alice")).status_code == 200

    def mine():
        gw.app.extensions["gateway"].usage.flush()  # (a line is counted as it is written)
        return call(gw, idp.token(sub="alice"), path="/_gateway/usage").json()
    assert wait_for(lambda: mine()["services"] == {"orders": 1}), mine()
    assert mine()["consumer"] == "corp:alice" and mine()["quota"] is None
    assert call(gw, idp.token(sub="bob"), path="/_gateway/usage").json()["services"] == {}
    expired = call(gw, idp.token(sub="alice", lifetime=-120), path="/_gateway/usage")
    assert expired.status_code == 401
