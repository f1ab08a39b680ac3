"""JSON backends for the composition tests: small Flask apps served over real HTTP.

:func:`shop_backend` answers like a users/orders/products service would,
with a configurable delay per answer (``app.config["DELAY"]``, seconds) so
the tests can see whether calls ran one after another or together; every
request it got is in ``app.config["SEEN"]`` (method, full path, headers, body).
"""

from __future__ import annotations

import json
import time

from flask import Flask, Response, abort, jsonify, request

USERS = {1: {"id": 1, "name": "Ada", "team_id": 7}, 2: {"id": 2, "name": "Linus", "team_id": 8}}
TEAMS = {7: {"id": 7, "name": "Engines"}, 8: {"id": 8, "name": "Kernels"}}
ORDERS = [{"id": 1, "user_id": 1, "total": 30}, {"id": 2, "user_id": 2, "total": 12},
          {"id": 3, "user_id": 1, "total": 5}]
PRODUCTS = [{"id": 1, "name": "Keyboard"}, {"id": 2, "name": "Mouse"}]


def shop_backend(name: str = "shop") -> Flask:
    app = Flask(f"backend-{name}")
    app.config.update(DELAY=0.0, SEEN=[])

    @app.before_request
    def note_and_wait():
        app.config["SEEN"].append({"method": request.method, "path": request.full_path.rstrip("?"),
                                   "at": time.monotonic(),
                                   "headers": dict(request.headers),
                                   "body": request.get_data(as_text=True)})
        delay = float(request.args.get("delay", app.config["DELAY"]))
        if delay:
            time.sleep(delay)

    @app.get("/users/<int:user_id>")
    def user(user_id: int):
        if user_id not in USERS:
            abort(404)
        return jsonify(USERS[user_id])

    @app.get("/teams/<int:team_id>")
    def team(team_id: int):
        if team_id not in TEAMS:
            abort(404)
        return jsonify(TEAMS[team_id])

    @app.get("/orders")
    def orders():
        user_id = request.args.get("user_id", type=int)
        return jsonify(items=[o for o in ORDERS if user_id is None or o["user_id"] == user_id],
                       user_id=user_id)

    @app.get("/products")
    def products():
        return jsonify(PRODUCTS)

    @app.route("/echo", methods=["GET", "POST", "PUT"])
    @app.route("/echo/<path:rest>", methods=["GET", "POST", "PUT"])
    def echo(rest: str = ""):
        body = request.get_data(as_text=True)
        return jsonify(method=request.method, path=request.full_path.rstrip("?"),
                       args=request.args.to_dict(flat=False), headers=dict(request.headers),
                       body=json.loads(body) if body and request.is_json else body)

    @app.get("/status/<int:code>")
    def status(code: int):
        return jsonify(error=f"status {code}"), code

    @app.get("/text")
    def text():
        return Response("plain words", mimetype="text/plain")

    @app.get("/huge")
    def huge():
        size = request.args.get("bytes", 2 * 1024 * 1024, type=int)
        return Response(json.dumps({"blob": "x" * size}), mimetype="application/json")

    return app
