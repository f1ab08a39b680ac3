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

from werkzeug.wrappers import Request, Response

from gateway.testing.tokens import SigningKeys


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
        self.keys = SigningKeys()  # the plugin's (gateway.testing.tokens): one copy

    @property
    def rsa(self):
        return self.keys.rsa

    @property
    def rsa_kid(self) -> str:
        return self.keys.rsa_kid

    def jwks(self) -> dict:
        return self.keys.jwks()

    def token(self, claims: dict | None = None, alg: str = "RS256", headers: dict | None = None,
              key=None, lifetime: int = 300, **overrides) -> str:
        now = int(time.time())
        payload = {"iss": self.issuer, "sub": "user-1", "aud": "orders-api", "iat": now,
                   "exp": now + lifetime, "scope": "orders:read", **(claims or {})}
        payload.update(overrides)
        payload = {k: v for k, v in payload.items() if v is not None}
        return self.keys.sign(payload, alg, headers, key)

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
