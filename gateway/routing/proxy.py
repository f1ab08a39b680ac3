"""Forwarding one request to a service and streaming its answer back.

:class:`ServiceProxy` is the view function of a service blueprint. Everything
that does not depend on the request (prefix length, header drop-lists, the
upstream and its pools, the steps around the upstream call) is settled in
``__init__``, at start-up. Per request the view makes the :class:`~.call.Call`
(raw target, end-to-end headers and the ones a proxy adds, the one request
body), hands it to the call's steps (gateway/routing/call.py: canary branch,
request transform, mirror copy, then the upstream), and turns the answer into
the response, its body handed to the WSGI server as it arrives.
"""

from __future__ import annotations

import functools
import logging

from flask import Response, request
from werkzeug.exceptions import MethodNotAllowed

from .. import state as request_state
from ..compose.transform import Transformer
from ..config import ServiceConfig
from ..errors import GatewayError
from ..state import OFFLOAD_DECIDING
from ..transport import NOT_SENT, Answer, Upstream, UpstreamBody, is_stream
from .call import Call, build_send
from .headers import DROP_FROM_REQUEST, DROP_FROM_RESPONSE, connection_listed, end_to_end
from .mirror import Mirror
from .paths import prefix_segments, raw_target, strip_segments
from .requestbody import body_of, buffer_limit
from .websocket import WebSocketRelay, is_handshake

log = logging.getLogger("gateway.transform")


class ProxyResponse(Response):
    """A response that carries the upstream's headers and body unchanged.

    werkzeug would add a default ``Content-Type``, drop headers from 204/304
    answers and skip the body iterable on HEAD; a proxy wants none of that.
    The WSGI server closes the body, which returns the upstream connection.
    """

    default_mimetype = None

    def get_wsgi_headers(self, environ):
        return self.headers

    def get_app_iter(self, environ):
        return self.response


class ServiceProxy:
    """The view that forwards every request under a service's prefix."""

    def __init__(self, service: ServiceConfig, upstream: Upstream, trusted_proxies: int,
                 websocket: WebSocketRelay, canary: Upstream | None = None,
                 mirror: Mirror | None = None):
        """:param canary: the canary's targets, for requests the chain sent to that branch.
        :param mirror: where copies of sampled requests go."""
        self.service = service
        self.websocket = websocket
        self.canary = canary
        self.mirror = mirror
        self.upstream = upstream
        self.trusted_proxies = trusted_proxies
        self.prefix_segments = prefix_segments(service.prefix, service.strip_prefix)
        self.forwarded_prefix = service.prefix if service.strip_prefix and service.prefix != "/" else ""
        drop = set(DROP_FROM_REQUEST)
        if service.preserve_host:
            drop.discard("host")
        if "api_key" in service.auth_methods:
            drop.add("x-api-key")  # the upstream learns the consumer, never the key
        if "jwt" in service.auth_methods and not service.forward_token:
            drop.add("authorization")  # nor the token, unless the service asks for it
        # a client's copies of the headers claims go into are never believed
        drop.update(h.lower() for h in service.claims_to_headers)
        if service.canary is not None:
            drop.add(service.canary.header.lower())  # it chose a branch; the upstream never sees it
        self.drop_request = frozenset(drop)
        self.methods = frozenset(service.methods)
        self.transformer = Transformer(service.name, service.transform) if service.transform else None
        #: the upstream call with the steps the service switches on, built once
        #: (gateway/routing/call.py): canary branch, request transform, mirror copy
        self.send = build_send(canary, self.transformer, mirror,
                               buffer_limit(service.max_body_bytes))
        # Flask names views by these, as for a function
        self.__name__ = self.__qualname__ = f"proxy_{service.name}"

    def __call__(self, **_route_args) -> Response:
        environ = request.environ
        method = environ["REQUEST_METHOD"]
        if method not in self.methods:
            # only OPTIONS gets here: routed for CORS preflights, not allowed otherwise
            raise MethodNotAllowed(valid_methods=sorted(self.methods))
        if environ.get(OFFLOAD_DECIDING):  # nginx carries it: say what goes upstream
            return self.decision()
        # the chain's path check refused any path that could climb out of the prefix
        target = raw_target(environ)
        path, _, query = target.partition("?")
        call = Call(method, strip_segments(path, self.prefix_segments), query,
                    self.outgoing_headers(environ), body_of(), self.upstream,
                    bare_question_mark=target.endswith("?"))
        if is_handshake(environ):
            return self.open_websocket(environ, call)
        return self.respond(self.send(call), method)

    def respond(self, answer: Answer, method: str) -> Response:
        """The upstream's answer as the client gets it: end-to-end headers, a length it can
        trust, reshaped by the transform when it asks, streamed as it arrives."""
        response_headers = _checked_length(answer, end_to_end(
            answer.headers.items(), DROP_FROM_RESPONSE, answer.headers.get("connection")))
        status_line = f"{answer.status} {answer.reason}" if answer.reason else answer.status
        first = b""
        transformer = self.transformer
        if transformer is not None:
            response_headers = transformer.response_headers(response_headers)
            if (transformer.reshapes_answers and method != "HEAD"
                    and transformer.wants_answer(answer.status, answer.headers)):
                reshaped, first = self.reshape_answer(transformer, answer)
                if reshaped is not None:  # else: too large, streamed on after ``first``
                    return Response(reshaped, status=status_line, headers=[
                        (k, v) for k, v in response_headers if k.lower() != "content-length"])
        if is_stream(answer.headers.get("content-type")) \
                and "x-accel-buffering" not in answer.headers:
            # events and lines go out as they come: nginx must not hold them back either
            response_headers.append(("X-Accel-Buffering", "no"))
        return ProxyResponse(UpstreamBody(answer, first), status=status_line,
                             headers=response_headers, direct_passthrough=True)

    def open_websocket(self, environ: dict, call: Call) -> Response:
        """A WebSocket handshake: the same headers and rules as any request, then the
        connection carried to its end (gateway/routing/websocket.py)."""
        call.query = self.websocket.query_for_upstream(call.query)
        if self.transformer is not None:
            call.headers, call.query, _ = self.transformer.outgoing(call.headers, call.query,
                                                                    None)
        upstream = self.canary if self.canary is not None and \
            request_state.current().branch == "canary" else self.upstream
        return self.websocket.open(environ, call.target, call.headers, upstream)

    def reshape_answer(self, transformer: Transformer,
                       answer: Answer) -> tuple[bytes | None, bytes]:
        """Read the answer up to the cap and reshape it.

        :returns: the whole body to send (reshaped, or as it came when it is
            not JSON the transform can use), or None and the bytes already
            read when the answer is too large to buffer.
        """
        cap = transformer.response.max_body_bytes
        data = answer.read_up_to(cap)
        if len(data) > cap:
            log.warning("%s: answer passed through untouched: it is larger than the transform's "
                        "max_body_bytes (%d)", self.service.name, cap)
            return None, data
        reshaped = transformer.response_body(data)
        return (data if reshaped is None else reshaped), b""

    def decision(self) -> Response:
        """A request nginx holds passed the chain (gateway/offload): the headers every
        upstream call of it would carry (request id, consumer, claims), for nginx to set."""
        headers = [(f"X-Gateway-Up-{name}", value)
                   for name, value in self.upstream.hooks.headers().items()]
        return Response(b"", status=200, headers=[("X-Gateway-Allowed", "1"), *headers])

    def outgoing_headers(self, environ: dict) -> dict[str, str]:
        """The client's end-to-end headers plus the ones a proxy adds."""
        drop = self.drop_request
        connection = environ.get("HTTP_CONNECTION")
        if connection:
            drop = drop | connection_listed(connection)
        headers: dict[str, str] = {}
        for key, value in environ.items():
            if key.startswith("HTTP_"):
                name, lower = _header_name(key)
                if lower not in drop:
                    headers[name] = value
        if environ.get("CONTENT_TYPE"):
            headers["Content-Type"] = environ["CONTENT_TYPE"]
        if environ.get("CONTENT_LENGTH"):
            headers["Content-Length"] = environ["CONTENT_LENGTH"]
        # the transport would otherwise add headers of its own the client never sent
        headers.setdefault("User-Agent", NOT_SENT)
        headers.setdefault("Accept-Encoding", NOT_SENT)
        headers.update(self.forwarded_headers(environ))
        return headers

    def forwarded_headers(self, environ: dict) -> dict[str, str]:
        """X-Forwarded-*: what the client asked for, as far as proxies we trust say."""
        original = environ.get("werkzeug.proxy_fix.orig")
        if original is not None:
            # ProxyFix believed the last `trusted_proxies` hops; pass on just those
            hops = [h.strip() for h in environ.get("HTTP_X_FORWARDED_FOR", "").split(",")]
            chain = [h for h in hops if h][-self.trusted_proxies:]
            chain.append(original.get("REMOTE_ADDR") or "")
        else:
            chain = [environ.get("REMOTE_ADDR") or ""]
        prefix = (environ.get("SCRIPT_NAME") or "") + self.forwarded_prefix
        forwarded = {
            "X-Forwarded-For": ", ".join(chain),
            "X-Forwarded-Proto": environ.get("wsgi.url_scheme", "http"),
            "X-Forwarded-Host": environ.get("HTTP_HOST") or environ.get("SERVER_NAME", ""),
            "X-Forwarded-Port": str(environ.get("SERVER_PORT", "")),
        }
        if prefix:
            forwarded["X-Forwarded-Prefix"] = prefix
        return forwarded


@functools.lru_cache(maxsize=512)
def _header_name(environ_key: str) -> tuple[str, str]:
    """``HTTP_X_API_KEY`` -> (``X-Api-Key``, ``x-api-key``), cached: the set of names is small."""
    name = environ_key[5:].replace("_", "-").title()
    return name, name.lower()


def _checked_length(answer: Answer, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The answer's headers, with a Content-Length the client can trust.

    A chunked answer is relayed by length of what arrives, so any
    Content-Length beside it goes (it is what response smuggling rides on); a
    Content-Length that is not one number is a broken answer: 502.
    """
    if "transfer-encoding" in answer.headers:
        return [(k, v) for k, v in headers if k.lower() != "content-length"]
    length = answer.headers.get("content-length")
    if length is not None:
        values = {part.strip() for part in length.split(",")}
        if len(values) != 1 or not values.pop().isdigit():
            answer.discard()
            raise GatewayError(502, "bad_gateway", "the upstream service answered with an "
                               f"invalid Content-Length ({length[:40]!r})")
    return headers
