"""Hand-written blueprints the tests register through the ``blueprints`` config key."""

from flask import Blueprint, jsonify

bp = Blueprint("sample", __name__, url_prefix="/sample")


@bp.get("/hello")
def hello():
    return jsonify(hello="world")


@bp.get("/boom")
def boom():
    raise RuntimeError("secret internal detail")
