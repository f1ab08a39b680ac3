"""``POST /legacy-form/orders``: orders from an old HTML form, checked and turned into JSON.

The config's ``transform:`` reshapes JSON (see the ``legacy`` service in
examples/gateway.yaml). An old client that posts a form
(``customer=1&sku=2&qty=3``) needs more: fields read as numbers, checked,
and a clear 400 naming the field when one is wrong. This view does it and
forwards the order with the gateway's Python API (gateway/api.py), so the
call still goes through the orders service's pools, breaker and timeouts.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from gateway.api import service
from gateway.errors import GatewayError

bp = Blueprint("legacy_orders", __name__, url_prefix="/legacy-form")

FIELDS = {"customer": "user_id", "sku": "product_id", "qty": "quantity"}


@bp.post("/orders")
def create_order():
    order = {}
    for field, name in FIELDS.items():
        value = request.form.get(field, "").strip()
        if not value.isdigit() or int(value) < 1:
            raise GatewayError(400, "invalid_body", f"form field {field!r} must be a whole "
                               f"number of at least 1, got {value!r}")
        order[name] = int(value)
    created = service("orders").call("POST", "/orders", json=order)
    if created.status_code != 201:
        raise GatewayError(502, "bad_gateway", f"the orders service answered {created.status_code}")
    body = created.json()
    return jsonify(order_no=body["id"], status="accepted"), 201
