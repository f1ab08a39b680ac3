"""API keys and consumers: ``auth: api_key``.

The key comes in ``X-API-Key``. Only sha256 hashes of keys are held; the
presented key is hashed and looked up in the worker's
:class:`~gateway.keyring.Directory` (gateway.yaml's keys and the database's,
one dict: the same cost with 100,000 keys as with 10). The consumer's name is
put on the request's state (every upstream call sends it upstream as ``X-Consumer``; the key
itself never goes upstream). Every refusal (``missing_api_key``,
``invalid_api_key``, ``forbidden``; ``bad_checksum`` for an issued-form key
whose checksum is wrong, answered as ``invalid_api_key``) is counted in
``gateway_auth_failures_total{service, reason}``.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import request

from .. import state as request_state
from ..config import RoutePolicies
from ..errors import GatewayError
from ..keyring import Directory, Refusal
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

    def __init__(self, route: str, directory: Directory,
                 from_query: str | None = None,
                 on_failure: Callable[[str, str], None] | None = None):
        """:param directory: the keys this worker accepts (gateway/keyring).
        :param from_query: ``websocket.credentials_query``: a handshake's key may
            come in this query parameter.
        :param on_failure: ``f(route, reason)`` for each refusal (the auth failures counter)."""
        self.route = route
        self.directory = directory
        self.from_query = from_query
        self.on_failure = on_failure or (lambda route, reason: None)

    def before(self):
        try:
            return self.admit()
        except GatewayError as refused:
            self.on_failure(self.route, getattr(refused, "reason", refused.code))
            raise

    def admit(self) -> None:
        key = request.headers.get(HEADER) or query_credential(self.from_query)
        if not key:
            raise GatewayError(401, "missing_api_key",
                               f"this route needs an API key in the {HEADER} header", CHALLENGE)
        try:
            entry, consumer = self.directory.find(key)
        except Refusal as refusal:
            refused = GatewayError(401, "invalid_api_key",
                                   f"the key in {HEADER} is not valid", CHALLENGE)
            refused.reason = refusal.reason  # type: ignore[attr-defined]
            raise refused from None
        services = consumer.services
        if services is not None and self.route not in services:
            raise GatewayError(403, "forbidden",
                               f"consumer {consumer.name!r} may not use {self.route!r}")
        state = request_state.current()
        state.consumer = consumer.name
        state.key_id = entry.key_id
        return None
