"""An identity provider for the token tests: discovery, a rotatable JWKS, introspection.

``IdentityProvider`` is a WSGI app served on loopback. It signs tokens with
its current keys (RSA and EC), can rotate them, can be taken down (every
endpoint answers 503) and counts every fetch, so tests can check how often
the gateway asks.
"""

from __future__ import annotations

import json
import threading
import time
import uuid

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from werkzeug.wrappers import Request, Response


class IdentityProvider:
    def __init__(self):
        self.url = ""  # set once served
        self.realm = "/realms/corp"
        self.down = False
        #: how long the JWKS takes to answer: long enough for concurrent requests to pile up
        self.jwks_delay = 0.05
        self.fetches = {"discovery": 0, "jwks": 0, "introspect": 0}
        self.lock = threading.Lock()
        self.active_tokens: dict[str, dict] = {}
        self.introspection_auth: list[str] = []
        self.rotate()

    @property
    def issuer(self) -> str:
        return self.url + self.realm

    def rotate(self) -> None:
        """New keys: the old ones disappear from the JWKS."""
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.rsa_kid, self.ec_kid = f"rsa-{uuid.uuid4().hex[:8]}", f"ec-{uuid.uuid4().hex[:8]}"

    def jwks(self) -> dict:
        keys = []
        for kid, key, alg in ((self.rsa_kid, self.rsa, "RS256"), (self.ec_kid, self.ec, "ES256")):
            algorithm = jwt.algorithms.RSAAlgorithm if alg == "RS256" else jwt.algorithms.ECAlgorithm
            jwk = json.loads(algorithm.to_jwk(key.public_key()))
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": alg})
        return {"keys": keys}

    def token(self, claims: dict | None = None, alg: str = "RS256", headers: dict | None = None,
              key=None, lifetime: int = 300, **overrides) -> str:
        now = int(time.time())
        payload = {"iss": self.issuer, "sub": "user-1", "aud": "orders-api", "iat": now,
                   "exp": now + lifetime, "scope": "orders:read", **(claims or {})}
        payload.update(overrides)
        payload = {k: v for k, v in payload.items() if v is not None}
        kid = self.rsa_kid if alg.startswith(("RS", "PS")) else self.ec_kid
        signing = key if key is not None else (self.rsa if alg.startswith(("RS", "PS")) else self.ec)
        return jwt.encode(payload, signing, algorithm=alg, headers={"kid": kid, **(headers or {})})

    def __call__(self, environ, start_response):
        request = Request(environ)
        if self.down:
            return Response("down", status=503)(environ, start_response)
        path = request.path
        if path == self.realm + "/.well-known/openid-configuration":
            with self.lock:
                self.fetches["discovery"] += 1
            body = {"issuer": self.issuer, "jwks_uri": self.issuer + "/certs",
                    "introspection_endpoint": self.issuer + "/introspect"}
        elif path == self.realm + "/certs":
            with self.lock:
                self.fetches["jwks"] += 1
            time.sleep(self.jwks_delay)
            body = self.jwks()
        elif path == self.realm + "/introspect" and request.method == "POST":
            with self.lock:
                self.fetches["introspect"] += 1
            self.introspection_auth.append(request.headers.get("Authorization", ""))
            body = self.active_tokens.get(request.form.get("token", ""), {"active": False})
        else:
            return Response("not found", status=404)(environ, start_response)
        return Response(json.dumps(body), mimetype="application/json")(environ, start_response)
