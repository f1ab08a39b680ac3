"""API keys and consumers: ``auth: api_key``.

The key comes in ``X-API-Key``. Only sha256 hashes of keys are held; the
presented key is hashed and compared in constant time. The consumer's name is
put on the request's state (every upstream call sends it upstream as ``X-Consumer``; the key
itself never goes upstream). Every refusal (``missing_api_key``,
``invalid_api_key``, ``forbidden``) is counted in
``gateway_auth_failures_total{service, reason}``.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping

from flask import request

from .. import state as request_state
from ..config import ConsumerConfig, RoutePolicies, hash_key
from ..errors import GatewayError
from ..routing.websocket import is_handshake
from . import Policy

HEADER = "X-API-Key"
CHALLENGE = {"WWW-Authenticate": f'ApiKey realm="gateway", header="{HEADER}"'}


def credentials_query(policies: RoutePolicies) -> str | None:
    """The route's ``websocket.credentials_query``, if it has one."""
    websocket = getattr(policies, "websocket", None)
    return websocket.credentials_query if websocket is not None else None


def query_credential(name: str | None) -> str | None:
    """A key or token from the query parameter ``name`` of a WebSocket handshake
    (browsers cannot set headers on one); never from another request."""
    if name is None or not is_handshake(request.environ):
        return None
    return request.args.get(name) or None


class ApiKeyAuth(Policy):
    step = "authentication"

    def __init__(self, route: str, consumers: Mapping[str, ConsumerConfig],
                 from_query: str | None = None,
                 on_failure: Callable[[str, str], None] | None = None):
        """:param from_query: ``websocket.credentials_query``: a handshake's key may
            come in this query parameter.
        :param on_failure: ``f(route, code)`` for each refusal (the auth failures counter)."""
        self.route = route
        self.from_query = from_query
        self.on_failure = on_failure or (lambda route, code: None)
        # (hash, name, services) read once: a pydantic model's attributes cost more
        self.keys = tuple((h, c.name, c.services) for c in consumers.values()
                          for h in c.key_hashes)

    def before(self):
        try:
            return self.admit()
        except GatewayError as refused:
            self.on_failure(self.route, refused.code)
            raise

    def admit(self) -> None:
        key = request.headers.get(HEADER) or query_credential(self.from_query)
        if not key:
            raise GatewayError(401, "missing_api_key",
                               f"this route needs an API key in the {HEADER} header", CHALLENGE)
        presented = hash_key(key)
        consumer, services = None, None
        # every stored hash is compared, without early exit: the time taken
        # says nothing about which key, or how much of one, matched
        for stored, name, allowed in self.keys:
            if hmac.compare_digest(stored, presented):
                consumer, services = name, allowed
        if consumer is None:
            raise GatewayError(401, "invalid_api_key",
                               f"the key in {HEADER} is not valid", CHALLENGE)
        if services is not None and self.route not in services:
            raise GatewayError(403, "forbidden",
                               f"consumer {consumer!r} may not use {self.route!r}")
        request_state.current().consumer = consumer
        return None
