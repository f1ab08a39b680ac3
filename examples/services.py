"""Three small backend services of a shop: users, orders and products.

Each is a plain Flask app with its data in memory, standing in for the real
backends a company runs, and publishes its own OpenAPI document at
``/openapi.json`` (the gateway merges them into its ``/docs``).
``examples/run.py`` serves them on 9001-9003.
"""

from __future__ import annotations

from flask import Flask, abort, jsonify, request

from examples.idp import idp_app


def _crud_app(name: str, items: dict[int, dict]) -> Flask:
    """An app serving ``/<name>`` and ``/<name>/<id>`` over an in-memory dict.

    ``GET /<name>?field=value`` lists the items whose field has that value.
    """
    app = Flask(f"example-{name}")

    @app.get(f"/{name}")
    def list_items():
        wanted = request.args.to_dict()
        return jsonify([item for item in sorted(items.values(), key=lambda i: i["id"])
                        if all(str(item.get(k)) == v for k, v in wanted.items())])

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

    @app.get("/openapi.json")
    def openapi():
        return jsonify(_document(name, items))

    return app


def _document(name: str, items: dict[int, dict]) -> dict:
    """The service's OpenAPI document, its item schema read off the first item."""
    types = {int: "integer", float: "number", str: "string", bool: "boolean"}
    sample = next(iter(items.values()))
    schema = {"type": "object", "properties": {
        field: {"type": types.get(type(value), "string")} for field, value in sample.items()}}
    ref = {"$ref": f"#/components/schemas/{name[:-1].capitalize()}"}
    item_id = [{"name": "item_id", "in": "path", "required": True, "schema": {"type": "integer"}}]
    json_of = lambda s: {"content": {"application/json": {"schema": s}}}  # noqa: E731
    return {"openapi": "3.1.0", "info": {"title": name, "version": "1"}, "paths": {
        f"/{name}": {
            "get": {"summary": f"List {name}", "operationId": f"list_{name}",
                    "responses": {"200": {"description": "OK", **json_of(
                        {"type": "array", "items": ref})}}},
            "post": {"summary": f"Create one of {name}", "operationId": f"create_{name}",
                     "requestBody": {"required": True, **json_of(schema)},
                     "responses": {"201": {"description": "Created", **json_of(ref)},
                                   "400": {"description": "Not a JSON object"}}}},
        f"/{name}/{{item_id}}": {
            "parameters": item_id,
            "get": {"summary": f"One of {name}", "operationId": f"get_{name}",
                    "responses": {"200": {"description": "OK", **json_of(ref)},
                                  "404": {"description": "No such item"}}},
            "delete": {"summary": f"Delete one of {name}", "operationId": f"delete_{name}",
                       "responses": {"204": {"description": "Deleted"}}}}},
        "components": {"schemas": {ref["$ref"].rsplit("/", 1)[1]: schema}}}


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
            "products": (products_app, 9003), "idp": (idp_app, 9004)}
