"""A development identity provider for the example shop: OIDC discovery, a JWKS and a token endpoint.

For trying ``auth: jwt`` offline, never for production: its RSA key is made
when the process starts, and it gives a token to anyone who knows the demo
client's secret (the OAuth 2 client-credentials grant):

    curl -d client_id=demo -d client_secret=demo-secret -d scope='orders:read orders:write' \\
         http://127.0.0.1:9004/realms/dev/token

examples/gateway.yaml trusts it as issuer ``dev``.
"""

from __future__ import annotations

import json
import time
import uuid

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, jsonify, request

REALM = "/realms/dev"
AUDIENCE = "shop-api"
CLIENTS = {"demo": "demo-secret"}
LIFETIME = 300


def idp_app() -> Flask:
    app = Flask("example-idp")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kid = uuid.uuid4().hex[:12]

    def issuer() -> str:
        return request.host_url.rstrip("/") + REALM

    @app.get(f"{REALM}/.well-known/openid-configuration")
    def discovery():
        return jsonify(issuer=issuer(), jwks_uri=issuer() + "/certs",
                       token_endpoint=issuer() + "/token",
                       grant_types_supported=["client_credentials"])

    @app.get(f"{REALM}/certs")
    def certs():
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
        return jsonify(keys=[{**public, "kid": kid, "use": "sig", "alg": "RS256"}])

    @app.post(f"{REALM}/token")
    def token():
        client = request.form.get("client_id", "")
        if CLIENTS.get(client) != request.form.get("client_secret"):
            return jsonify(error="invalid_client"), 401
        now = int(time.time())
        claims = {"iss": issuer(), "aud": AUDIENCE, "sub": request.form.get("sub", client),
                  "azp": client, "iat": now, "exp": now + LIFETIME,
                  "scope": request.form.get("scope", "orders:read")}
        access = jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})
        return jsonify(access_token=access, token_type="Bearer", expires_in=LIFETIME)

    return app
