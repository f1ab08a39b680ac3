"""``/shop``: answers that combine several example services into one.

``GET /shop/users/<id>/orders`` returns a user together with their orders,
fetched from the users and orders services.

A hand-written endpoint calls services directly (``Upstream.call``), not
through their routes, so the services' own policies do not apply to it: the
blueprint gets policies of its own in the config, exactly as a service does.
examples/gateway.yaml gives this one ``auth: api_key`` (the orders it shows
need a key at ``/orders`` too) and a quota; the consumer's name goes upstream
as ``X-Consumer`` with every call, like the request id.
"""

from __future__ import annotations

from flask import Blueprint, jsonify

from gateway.errors import GatewayError
from gateway.extension import gateway_of

bp = Blueprint("shop", __name__, url_prefix="/shop")


@bp.get("/users/<int:user_id>/orders")
def user_orders(user_id: int):
    upstreams = gateway_of().upstreams
    user = upstreams["users"].call("GET", f"/users/{user_id}")
    if user.status_code == 404:
        raise GatewayError(404, "not_found", f"there is no user {user_id}")
    if not user.ok:
        raise GatewayError(502, "bad_gateway", f"the users service answered {user.status_code}")
    orders = upstreams["orders"].call("GET", "/orders")
    if not orders.ok:
        raise GatewayError(502, "bad_gateway", f"the orders service answered {orders.status_code}")
    mine = [order for order in orders.json() if order.get("user_id") == user_id]
    return jsonify(user=user.json(), orders=mine)
