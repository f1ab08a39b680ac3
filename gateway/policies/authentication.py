"""``auth: jwt`` and ``auth: [api_key, jwt]``: who the client is, from a bearer token or a key.

A route with ``auth: api_key`` alone keeps the :class:`~.apikey.ApiKeyAuth`
policy; anything with ``jwt`` gets :class:`Authentication`, which admits a
request by whichever credential it carries (an ``X-API-Key`` goes to the key
check, an ``Authorization: Bearer`` token to the :class:`~gateway.tokens.Verifier`).

A verified token makes the consumer ``<issuer>:<sub>`` (quotas, cache keys,
logs and metrics), must carry the route's scopes for the method (``scope``
or ``scp``), and fills ``claims_to_headers`` for every upstream call. Every
refusal is counted in ``gateway_auth_failures_total{service, reason}``; the
token itself is never echoed, logged or labelled.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from flask import request

from .. import state as request_state
from ..config import GatewayConfig, RoutePolicies
from ..errors import GatewayError
from ..keyring import Directory
from ..tokens import TokenError, Verifier
from ..tokens.verify import invalid
from . import Policy
from .apikey import CHALLENGE as API_KEY_CHALLENGE
from .apikey import HEADER as API_KEY_HEADER
from .apikey import ApiKeyAuth, credentials_query, query_credential

_UNSAFE = ("\r", "\n", "\0")


class Authentication(Policy):
    step = "authentication"

    def __init__(self, route: str, policies: RoutePolicies, config: GatewayConfig,
                 verifier: Verifier | None, on_failure: Callable[[str, str], None],
                 directory: Directory | None = None):
        methods = policies.auth_methods
        self.route = route
        self.policies = policies
        self.from_query = credentials_query(policies)
        self.keys = ApiKeyAuth(route, directory if directory is not None else Directory.of(config),
                               self.from_query) if "api_key" in methods else None
        self.verifier = verifier if "jwt" in methods else None
        self.issuers = list(policies.issuers or config.issuers)
        self.on_failure = on_failure
        self.challenge = f'Bearer realm="{route}"'
        if self.keys is not None:
            self.challenge = f'{API_KEY_CHALLENGE["WWW-Authenticate"]}, {self.challenge}'

    def before(self):
        try:
            return self._admit()
        except GatewayError as refused:
            self.on_failure(self.route, getattr(refused, "reason", refused.code))
            raise

    def _admit(self):
        if self.keys is not None and (self.verifier is None
                                      or request.headers.get(API_KEY_HEADER) is not None):
            return self.keys.admit()
        assert self.verifier is not None
        scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
        token = token.strip()
        if not scheme and (from_query := query_credential(self.from_query)):
            # a handshake's credential in the query: a JWT has three dot-separated parts
            if self.keys is not None and from_query.count(".") != 2:
                return self.keys.admit()
            scheme, token = "bearer", from_query
        if scheme.lower() != "bearer" or not token:
            raise TokenError(401, "missing_token", "this route needs a bearer token "
                             "(Authorization: Bearer <token>)", self.challenge)
        issuer, claims = self.verifier.verify(token, self.issuers, self.route)
        needed = self.policies.scopes_for(request.method)
        granted = _scopes(claims)
        if not set(needed) <= granted:
            scope = " ".join(needed)
            raise TokenError(403, "insufficient_scope", f"the token lacks the scopes {scope!r}",
                             f'Bearer realm="{self.route}", error="insufficient_scope", '
                             f'scope="{scope}"')
        headers = {}
        for header, path in self.policies.claims_to_headers.items():
            value = _claim(claims, path)
            if value is None:
                continue
            if any(c in value for c in _UNSAFE):
                raise invalid(self.route, f"claim {path} holds control characters")
            headers[header] = value
        state = request_state.current()
        state.consumer = f"{issuer}:{claims.get('sub') or claims.get('client_id') or '-'}"
        state.issuer = issuer
        state.claim_headers = headers
        return None


def _scopes(claims: dict) -> set[str]:
    scope = claims.get("scope")
    if isinstance(scope, str):
        return set(scope.split())
    scp = claims.get("scp")
    if isinstance(scp, list):
        return {s for s in scp if isinstance(s, str)}
    if isinstance(scp, str):
        return set(scp.split())
    return set()


def _claim(claims: dict, path: str) -> str | None:
    """A dotted claim as a header value: lists joined with ", ", objects as JSON."""
    value: object = claims
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(v if isinstance(v, str) else json.dumps(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)
