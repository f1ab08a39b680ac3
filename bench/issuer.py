"""The identity provider of `make bench`'s JWT row: a JWKS on loopback and one RS256 token.

Served from a thread of the bench process; the gateway fetches the JWKS once
(cache_duration: one hour) and then verifies the token on every request (or
finds it in its verified-token cache, as it would in production).
"""

from __future__ import annotations

import json
import logging
import threading
import time

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.serving import make_server
from werkzeug.wrappers import Response

ISSUER = "https://bench-issuer.invalid/realms/bench"
AUDIENCE = "bench-api"


class BenchIssuer:
    def __init__(self, port: int):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        jwks = json.dumps({"keys": [{**public, "kid": "bench", "use": "sig", "alg": "RS256"}]})
        app = Response(jwks, mimetype="application/json")
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no request lines in the table
        self.server = make_server("127.0.0.1", port, app, threaded=True)
        self.jwks_uri = f"http://127.0.0.1:{port}/certs"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self) -> str:
        now = int(time.time())
        return jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": "bench", "iat": now,
                           "exp": now + 86400, "scope": "bench"}, self.key, algorithm="RS256",
                          headers={"kid": "bench"})

    def stop(self) -> None:
        self.server.shutdown()
