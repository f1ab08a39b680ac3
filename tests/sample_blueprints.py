"""Hand-written blueprints the tests register through the ``blueprints`` config key."""

from flask import Blueprint, jsonify

bp = Blueprint("sample", __name__, url_prefix="/sample")


@bp.get("/hello")
def hello():
    return jsonify(hello="world")


@bp.get("/boom")
def boom():
    raise RuntimeError("secret internal detail")


#: a blueprint that would shadow the gateway's own /metrics: refused by validation
reserved = Blueprint("reserved", __name__)


@reserved.get("/metrics")
def fake_metrics():
    return "not the gateway's"


#: a blueprint that calls a service through the gateway's one upstream path
calls = Blueprint("calls", __name__, url_prefix="/calls")


@calls.get("/echo")
def call_echo():
    from flask import current_app, request
    users = current_app.extensions["gateway"].upstreams["users"]
    answer = users.call("GET", "/users/echo", params={"q": request.args.get("q", "")})
    return jsonify(status=answer.status_code, upstream=answer.json())


#: a worker kept busy: each pass of a gevent worker's loop takes 50 ms of CPU
busy = Blueprint("busy", __name__, url_prefix="/busy")


@busy.get("/spin/<float:seconds>")
def spin(seconds: float):
    import time
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        slice_end = time.monotonic() + 0.05
        while time.monotonic() < slice_end:
            pass
        time.sleep(0)  # gevent's sleep under gunicorn: other greenlets run, then us again
    return jsonify(spun=seconds)
