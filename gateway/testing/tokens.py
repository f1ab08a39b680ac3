"""``issue_token``'s issuer: a signing key, and its JWKS served on loopback.

The gateway under test fetches the JWKS from here (the plugin sets each issuer's
``jwks_uri``) while the issuer keeps the name gateway.yaml gives it, so a token
this issues is the token the real identity provider would: same ``iss``, an
``aud`` the config accepts, scopes in ``scope``, times from ``gateway_clock``.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from .fakes import FakeUpstream


@cache
def _keys() -> dict[str, Any]:
    """One RSA and one EC key for the whole test session (making them takes time)."""
    return {"RS256": rsa.generate_private_key(public_exponent=65537, key_size=2048),
            "ES256": ec.generate_private_key(ec.SECP256R1())}


class TestIssuer:
    """Signs tokens; serves the public keys at :attr:`jwks_uri`."""

    __test__ = False  # not a test class, whatever pytest thinks of its name

    def __init__(self) -> None:
        self.server = FakeUpstream("issuer")
        keys = []
        for alg, key in _keys().items():
            algorithm = jwt.algorithms.RSAAlgorithm if alg == "RS256" \
                else jwt.algorithms.ECAlgorithm
            jwk = json.loads(algorithm.to_jwk(key.public_key()))
            keys.append({**jwk, "kid": f"test-{alg.lower()}", "use": "sig", "alg": alg})
        self.server.respond("GET", "/jwks", json={"keys": keys})

    @property
    def jwks_uri(self) -> str:
        return f"{self.server.url}/jwks"

    def token(self, *, iss: str, aud: str, sub: str, scopes: list[str] | None,
              claims: dict, now: float, expires_in: int,
              algorithms: list[str] | None = None) -> str:
        alg = next((a for a in ("RS256", "ES256") if algorithms is None or a in algorithms),
                   None)
        if alg is None:
            raise ValueError(f"issue_token signs RS256 or ES256; the issuer accepts only "
                             f"{', '.join(algorithms or [])}")
        payload = {"iss": iss, "aud": aud, "sub": sub, "iat": int(now),
                   "exp": int(now) + expires_in}
        if scopes:
            payload["scope"] = " ".join(scopes)
        payload.update(claims)
        return jwt.encode(payload, _keys()[alg], algorithm=alg,
                          headers={"kid": f"test-{alg.lower()}"})

    def close(self) -> None:
        self.server.close()
