"""``/shop``: answers that combine several example services into one.

``GET /shop/users/<id>/orders`` returns a user together with their orders,
fetched from the users and orders services.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from gateway.errors import GatewayError

bp = Blueprint("shop", __name__, url_prefix="/shop")


@bp.get("/users/<int:user_id>/orders")
def user_orders(user_id: int):
    upstreams = current_app.extensions["gateway"].upstreams
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
