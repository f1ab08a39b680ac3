"""An API gateway for Python teams: Flask blueprints in front of backend HTTP services.

``gateway.app.create_app(config)`` is the one entry point; ``gateway.wsgi``
(and the checkout's ``wsgi.py``) call it through ``load_app``. This package
file imports nothing: the gunicorn master imports the worker class
(``gateway.serve.worker``) and must not import what gevent patches in each
worker first (ssl, urllib3, redis). The packages, in the order a request meets them:

- ``config``: the YAML file, validated once into typed sections (before any request);
- ``state``: what is known about the request in hand (made first, read by ``telemetry``);
- ``routing``: one blueprint per service (the proxy view), hand-written ones, aggregates;
- ``policies``: each route's chain (CORS, IP rules, body size, API key or token, quota,
  validation, canary, cache), with ``tokens`` (bearer tokens checked against each
  issuer's keys) and ``validation`` (requests checked against OpenAPI documents);
- ``compose``: transformations and aggregates (answers made of other answers);
- ``transport``: pools, failover, breakers, the streamed answer;
- ``telemetry``: the access log, metrics and traces of each request;
- ``endpoints``: the gateway's own paths (health, metrics, ``/openapi.json``
  and ``/docs`` from ``openapi``, the status page);
- ``serve``: ``gateway serve``, the gunicorn settings and the gevent worker.

Hand-written blueprints use ``gateway.api`` (``service``, ``gather``).
"""
