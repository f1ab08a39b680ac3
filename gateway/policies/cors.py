"""``cors``: the gateway answers CORS preflights and labels responses.

Preflights (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``)
are answered here, before API keys are checked, and never reach the upstream.
Allowed origins get the ``Access-Control-*`` headers; others get none. Every
response carries ``Vary: Origin`` so caches keep the variants apart.

A WebSocket handshake is not covered by CORS: a browser opens one to any
site, with that site's cookies. So on a route with ``cors`` a handshake whose
``Origin`` is not an allowed one is refused here, 403 ``origin_not_allowed``
(cross-site WebSocket hijacking); one without ``Origin`` (not from a browser)
passes.
flask-cors is not used because it decorates the answer of the route's own
OPTIONS handling, and here that route is the upstream.
"""

from __future__ import annotations

from flask import Response, request

from .. import state as request_state
from ..config import CorsConfig
from ..errors import GatewayError
from ..routing.websocket import is_handshake
from . import Policy

#: Headers a browser script may read on top of the CORS-safelisted ones.
GATEWAY_EXPOSED = ("X-Request-ID", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset",
                   "Retry-After", "X-Cache-Status")


class Cors(Policy):
    step = "cors"

    def __init__(self, config: CorsConfig, route_methods: tuple[str, ...]):
        self.any_origin = "*" in config.origins
        self.origins = frozenset(config.origins)
        self.credentials = config.credentials
        self.allow_methods = ", ".join(config.methods or route_methods)
        self.allow_headers = ", ".join(config.headers) if config.headers else None
        self.expose = ", ".join(dict.fromkeys([*config.expose_headers, *GATEWAY_EXPOSED]))
        self.max_age = str(config.max_age)

    def allowed(self, origin: str | None) -> bool:
        return bool(origin) and (self.any_origin or origin in self.origins)

    def before(self):
        headers = request.headers
        if (request.method == "OPTIONS" and "Origin" in headers
                and "Access-Control-Request-Method" in headers):
            request_state.current().cors_preflight = True
            response = Response(status=204)
            del response.headers["Content-Type"]
            origin = headers["Origin"]
            if self.allowed(origin):
                self._allow(response, origin)
                response.headers["Access-Control-Allow-Methods"] = self.allow_methods
                requested = headers.get("Access-Control-Request-Headers")
                allow_headers = self.allow_headers or requested
                if allow_headers:
                    response.headers["Access-Control-Allow-Headers"] = allow_headers
                response.headers["Access-Control-Max-Age"] = self.max_age
            return response
        if "Origin" in headers and not self.allowed(headers["Origin"]) \
                and is_handshake(request.environ):
            raise GatewayError(403, "origin_not_allowed",
                               f"WebSocket connections from {headers['Origin'][:100]!r} are not "
                               "allowed here (the route's cors.origins)")
        return None

    def after(self, response: Response) -> Response:
        vary = response.headers.get("Vary", "")
        if "origin" not in vary.lower():
            response.headers["Vary"] = f"{vary}, Origin" if vary else "Origin"
        if request_state.current().cors_preflight:
            return response
        origin = request.headers.get("Origin")
        if origin and self.allowed(origin):
            self._allow(response, origin)
            response.headers["Access-Control-Expose-Headers"] = self.expose
        return response

    def _allow(self, response: Response, origin: str) -> None:
        if self.any_origin and not self.credentials:
            response.headers["Access-Control-Allow-Origin"] = "*"
        else:
            response.headers["Access-Control-Allow-Origin"] = origin
        if self.credentials:
            response.headers["Access-Control-Allow-Credentials"] = "true"
