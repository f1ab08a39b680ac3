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
