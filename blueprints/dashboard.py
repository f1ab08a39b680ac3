"""``/reports/users/<id>``: a user's orders joined with the products they name, and a total.

The config's ``aggregates:`` gathers answers side by side; joining them (each
order with its product, a computed total) is what Python is for. This view
uses the gateway's Python API (gateway/api.py): ``gather`` asks the three
services at once on the worker's bounded pool, ``service(...).call`` goes
through each service's pools, timeouts, retries and breaker with the request
id and consumer forwarded. examples/gateway.yaml gives it ``auth: api_key``.
"""

from __future__ import annotations

from flask import Blueprint, jsonify

from gateway.api import gather, service
from gateway.errors import GatewayError

bp = Blueprint("reports", __name__, url_prefix="/reports")


@bp.get("/users/<int:user_id>")
def user_report(user_id: int):
    answers = gather(
        timeout=10,
        user=lambda: service("users").call("GET", f"/users/{user_id}"),
        orders=lambda: service("orders").call("GET", "/orders", params={"user_id": user_id}),
        products=lambda: service("products").call("GET", "/products"))
    user = answers["user"]
    if user.status_code == 404:
        raise GatewayError(404, "not_found", f"there is no user {user_id}")
    for name, answer in answers.items():
        if not answer.ok:
            raise GatewayError(502, "bad_gateway",
                               f"the {name} service answered {answer.status_code}")
    products = {product["id"]: product for product in answers["products"].json()}
    lines = []
    for order in answers["orders"].json():
        product = products.get(order.get("product_id"), {})
        price = product.get("price", 0)
        lines.append({"order": order["id"], "product": product.get("name", "unknown"),
                      "quantity": order["quantity"], "subtotal": price * order["quantity"]})
    return jsonify(user=user.json()["name"], orders=lines,
                   total=round(sum(line["subtotal"] for line in lines), 2))
