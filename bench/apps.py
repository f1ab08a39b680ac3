"""The apps the benchmark compares, each served by gunicorn like the gateway.

- ``bench.apps:upstream``: the backend, a bare WSGI app answering a small JSON body.
- ``bench.apps:flask_hello``: Flask answering by itself (the ceiling).
- ``bench.apps:baseline``: the 30-line proxy users would write: Flask forwarding
  through one pooled ``requests.Session``. The gateway is measured against it.
"""

from __future__ import annotations

import os

import requests
from flask import Flask, Response, request

BODY = b'{"id": 1, "name": "Ada", "email": "ada@example.com"}'


def upstream(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(BODY)))])
    return [BODY]


flask_hello = Flask("hello")


@flask_hello.get("/users/<path:rest>")
def hello(rest):
    return Response(BODY, mimetype="application/json")


baseline = Flask("baseline")
_session = requests.Session()
_session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=64))
_UPSTREAM = os.environ.get("BENCH_UPSTREAM", "http://127.0.0.1:9101")


@baseline.route("/users/<path:rest>", methods=["GET", "POST"])
def forward(rest):
    resp = _session.request(request.method, f"{_UPSTREAM}/users/{rest}",
                            headers={k: v for k, v in request.headers if k != "Host"},
                            data=request.get_data(), allow_redirects=False)
    return Response(resp.content, status=resp.status_code,
                    headers=[(k, v) for k, v in resp.headers.items()
                             if k.lower() not in ("connection", "transfer-encoding",
                                                  "content-encoding", "content-length")])
