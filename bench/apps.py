"""The Python apps the benchmark compares (nginx is configured in bench/nginx.py).

- ``flask_hello``: Flask answering by itself: the stack's ceiling.
- ``baseline``: the 30-line proxy users would write: Flask forwarding through
  one pooled ``requests.Session``. The gateway is measured against it.
- ``seed``: the seed article's proxy: a new ``requests.request`` per call.

FastAPI + httpx, the peer the seed articles recommend, is bench/fastapi_peer.py.
"""

from __future__ import annotations

import os

import requests
from flask import Flask, Response, request

BODY = b'{"id": 1, "name": "Ada", "email": "ada@example.com"}'
UPSTREAM = os.environ.get("BENCH_UPSTREAM", "http://127.0.0.1:9101")
#: response headers a proxy must not copy (hop-by-hop, or re-made by the server)
SKIP = frozenset({"connection", "transfer-encoding", "content-encoding", "content-length",
                  "keep-alive", "date", "server"})

flask_hello = Flask("hello")


@flask_hello.get("/users/<path:rest>")
def hello(rest):
    return Response(BODY, mimetype="application/json")


def _answer(resp: requests.Response) -> Response:
    return Response(resp.content, status=resp.status_code,
                    headers=[(k, v) for k, v in resp.headers.items() if k.lower() not in SKIP])


baseline = Flask("baseline")
_session = requests.Session()
_session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=64))


def _relay(send, rest: str) -> Response:
    """Forward the request with ``send`` (a Session's ``request``, or ``requests.request``)."""
    resp = send(request.method, f"{UPSTREAM}/users/{rest}",
                headers={k: v for k, v in request.headers if k != "Host"},
                data=request.get_data(), allow_redirects=False)
    return _answer(resp)


@baseline.route("/users/<path:rest>", methods=["GET", "POST"])
def forward(rest):
    return _relay(_session.request, rest)


seed = Flask("seed")


@seed.route("/users/<path:rest>", methods=["GET", "POST"])
def seed_forward(rest):
    return _relay(requests.request, rest)  # a new connection for every call
