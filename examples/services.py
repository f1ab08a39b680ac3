"""Three small backend services of a shop: users, orders and products.

Each is a plain Flask app with its data in memory, standing in for the real
backends a company runs. ``examples/run.py`` serves them on 9001-9003.
"""

from __future__ import annotations

from flask import Flask, abort, jsonify, request


def _crud_app(name: str, items: dict[int, dict]) -> Flask:
    """An app serving ``/<name>`` and ``/<name>/<id>`` over an in-memory dict."""
    app = Flask(f"example-{name}")

    @app.get(f"/{name}")
    def list_items():
        return jsonify(sorted(items.values(), key=lambda i: i["id"]))

    @app.get(f"/{name}/<int:item_id>")
    def get_item(item_id: int):
        if item_id not in items:
            abort(404)
        return jsonify(items[item_id])

    @app.post(f"/{name}")
    def create_item():
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            return jsonify(error="expected a JSON object"), 400
        item_id = max(items, default=0) + 1
        items[item_id] = {**data, "id": item_id}
        return jsonify(items[item_id]), 201

    @app.delete(f"/{name}/<int:item_id>")
    def delete_item(item_id: int):
        items.pop(item_id, None)
        return "", 204

    @app.get("/health")
    def health():
        return jsonify(service=name, status="ok")

    return app


def users_app() -> Flask:
    return _crud_app("users", {1: {"id": 1, "name": "Ada"}, 2: {"id": 2, "name": "Linus"}})


def orders_app() -> Flask:
    return _crud_app("orders", {1: {"id": 1, "user_id": 1, "product_id": 2, "quantity": 1},
                                2: {"id": 2, "user_id": 2, "product_id": 1, "quantity": 3}})


def products_app() -> Flask:
    return _crud_app("products", {1: {"id": 1, "name": "Keyboard", "price": 49.0},
                                  2: {"id": 2, "name": "Mouse", "price": 19.5}})


#: service name -> (app factory, port); examples/gateway.yaml points at these ports
SERVICES = {"users": (users_app, 9001), "orders": (orders_app, 9002),
            "products": (products_app, 9003)}
