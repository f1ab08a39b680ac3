"""``/_gateway/usage``: a consumer's own usage, asked with its own key or token.

Answers the consumer's current period (its allowance's month or day, else the
calendar month): its allowance (limit, used, remaining, seconds to reset) and
its requests per service. The allowance is read from its counter in the
storage, the per-service counts from what the workers' usage flushes added
(gateway/usage): they may lag by up to ``usage.flush_seconds``. The call spends
no allowance and is not recorded (it belongs to no service). No other
consumer's figures can be asked for: the key or token says whose they are.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from ..errors import GatewayError
from ..extension import gateway_of
from ..keyring import Refusal
from ..policies.apikey import CHALLENGE, HEADER
from ..storage import BACKEND_ERRORS

bp = Blueprint("gateway_usage", __name__)


@bp.get("/_gateway/usage")
def own_usage() -> Response:
    gateway = gateway_of()
    name = _caller()
    consumer = gateway.directory.consumer(name)
    allowance = consumer.quota if consumer is not None else None
    now = gateway.clock.time()
    quota = None
    try:
        if allowance is not None:
            used, start, reset = gateway.quota_allowances.used(name, allowance) \
                if gateway.quota_allowances is not None else (0, None, 0)
            quota = {"limit": allowance.amount, "used": used,
                     "remaining": max(0, allowance.amount - used), "reset": reset}
        period = allowance.period if allowance is not None else "month"
        start, services = gateway.service_counts.read(name, period, now)
    except BACKEND_ERRORS:
        raise GatewayError(503, "storage_unavailable", "the usage counters cannot be read "
                           "now; try again shortly", {"Retry-After": "1"}) from None
    response = jsonify({"consumer": name, "plan": consumer.plan if consumer else None,
                        "period_start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "quota": quota, "services": services})
    response.headers["Cache-Control"] = "no-store"
    return response


def _caller() -> str:
    """The consumer the request's key or bearer token names (401 otherwise)."""
    gateway = gateway_of()
    key = request.headers.get(HEADER)
    if key:
        try:
            _, consumer = gateway.directory.find(key)
        except Refusal:
            raise GatewayError(401, "invalid_api_key", f"the key in {HEADER} is not valid",
                               CHALLENGE) from None
        return consumer.name
    scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
    if scheme.lower() == "bearer" and token.strip() and gateway.tokens is not None:
        issuer, claims = gateway.tokens.verify(token.strip(), list(gateway.config.issuers),
                                               "gateway")
        return f"{issuer}:{claims.get('sub') or claims.get('client_id') or '-'}"
    raise GatewayError(401, "missing_api_key", f"your usage is asked with your own API key "
                       f"in the {HEADER} header (or a bearer token)", CHALLENGE)
