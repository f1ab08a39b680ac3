"""Token rules that need no identity provider: scopes, claims as headers, refused shapes."""

from __future__ import annotations

import pytest

from gateway.config.issuers import IssuerConfig
from gateway.policies.authentication import _claim, _scopes
from gateway.tokens import TokenError, Verifier


@pytest.mark.parametrize("claims,granted", [
    ({"scope": "orders:read orders:write"}, {"orders:read", "orders:write"}),
    ({"scp": ["a", "b", 3]}, {"a", "b"}),
    ({"scp": "a b"}, {"a", "b"}),
    ({}, set()),
])
def test_scopes_come_from_scope_or_scp(claims, granted):
    assert _scopes(claims) == granted


@pytest.mark.parametrize("path,value", [
    ("sub", "user-1"), ("org.id", "42"), ("roles", "admin, dev"), ("verified", "true"),
    ("org", '{"id":42}'), ("missing", None), ("org.missing", None),
])
def test_claims_become_header_values(path, value):
    claims = {"sub": "user-1", "org": {"id": 42}, "roles": ["admin", "dev"], "verified": True}
    assert _claim(claims, path) == value


@pytest.fixture
def verifier():
    return Verifier({"corp": IssuerConfig.model_validate(
        {"issuer": "https://idp.example", "audiences": ["a"]})})


@pytest.mark.parametrize("token,why", [
    ("a.b.c.d.e", "JWE"),
    ("x" * 20000, "too large"),
    ("not-a.jwt.at-all", "malformed"),
])
def test_tokens_refused_before_any_key_is_fetched(verifier, token, why):
    with pytest.raises(TokenError) as refused:
        verifier.verify(token, ["corp"], "orders")
    assert refused.value.status == 401 and why in refused.value.message


@pytest.mark.parametrize("claims, now, why", [
    ({"exp": 1000}, 1029, None),                    # within the leeway
    ({"exp": 1000}, 1030, "expired"),
    ({"exp": 5000, "nbf": 1031}, 1000, "not yet valid"),
    ({"exp": 5000, "iat": 1030}, 1000, None),
    ({"exp": 5000, "iat": 1031}, 1000, "not yet valid"),
    ({"exp": "5000"}, 1000, "exp is not a number"),
    ({"exp": True}, 1000, "exp is not a number"),
])
def test_times_are_read_on_the_gateways_clock_with_the_leeway(claims, now, why):
    from gateway.tokens.verify import TokenError, _check_times

    if why is None:
        _check_times(claims, now, 30, "orders")
        return
    with pytest.raises(TokenError) as refused:
        _check_times(claims, now, 30, "orders")
    assert why in refused.value.message
