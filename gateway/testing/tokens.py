"""``issue_token``'s issuer: a signing key, and its JWKS served on loopback.

The gateway under test fetches the JWKS from here (the plugin sets each issuer's
``jwks_uri``) while the issuer keeps the name gateway.yaml gives it, so a token
this issues is the token the real identity provider would: same ``iss``, an
``aud`` the config accepts, scopes in ``scope``, times from ``gateway_clock``.
"""

from __future__ import annotations

import json
import uuid
from functools import cache
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from .fakes import FakeUpstream


class SigningKeys:
    """An RSA and an EC key with their key ids: what an issuer signs with, and the JWKS
    that publishes their public halves."""

    def __init__(self) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.rsa_kid, self.ec_kid = f"rsa-{uuid.uuid4().hex[:8]}", f"ec-{uuid.uuid4().hex[:8]}"

    def jwks(self) -> dict[str, Any]:
        """The public keys as a JWKS document (``{"keys": [...]}``)."""
        public = ((self.rsa_kid, "RS256", jwt.algorithms.RSAAlgorithm.to_jwk(
                       self.rsa.public_key())),
                  (self.ec_kid, "ES256", jwt.algorithms.ECAlgorithm.to_jwk(
                      self.ec.public_key())))
        return {"keys": [{**json.loads(jwk), "kid": kid, "use": "sig", "alg": alg}
                         for kid, alg, jwk in public]}

    def sign(self, payload: dict[str, Any], alg: str = "RS256", headers: dict | None = None,
             key: Any = None) -> str:
        """``payload`` as a JWT signed with the key for ``alg`` (RS*/PS*: RSA, else EC), its
        ``kid`` in the header; ``key`` signs instead (a forgery, in a test)."""
        rsa_family = alg.startswith(("RS", "PS"))
        kid = self.rsa_kid if rsa_family else self.ec_kid
        signing = key if key is not None else (self.rsa if rsa_family else self.ec)
        return jwt.encode(payload, signing, algorithm=alg, headers={"kid": kid, **(headers or {})})


@cache
def _session_keys() -> SigningKeys:
    """One pair of keys for the whole test session (making them takes time)."""
    return SigningKeys()


class TestIssuer:
    """Signs tokens; serves the public keys at :attr:`jwks_uri`."""

    __test__ = False  # not a test class, whatever pytest thinks of its name

    def __init__(self) -> None:
        self.keys = _session_keys()
        self.server = FakeUpstream("issuer")
        self.server.respond("GET", "/jwks", json=self.keys.jwks())

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
        return self.keys.sign(payload, alg)

    def close(self) -> None:
        self.server.close()
