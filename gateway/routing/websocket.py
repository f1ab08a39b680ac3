"""WebSocket handshakes on a service's routes, and the connection after them.

A handshake (a GET with ``Upgrade: websocket`` and ``upgrade`` among the
``Connection`` tokens, in any case) has been through the route's chain like
any request when it gets here: IP rules, key or token, quota, origin. Then:

- a service without ``websocket`` refuses it: 400 ``websocket_not_enabled``;
- a server that cannot hand over its connection (Lambda) answers 501
  ``websocket_not_supported``;
- too many open for the consumer: 429 ``too_many_connections``
  (:mod:`.slots`);
- else the handshake goes upstream with the proxy's headers (``X-Forwarded-*``,
  request id, consumer) and its ``Sec-WebSocket-*`` untouched. An answer other
  than ``101`` is relayed as an ordinary response; a ``101`` is written to the
  client as it came, and :class:`~gateway.transport.tunnel.Tunnel` carries the
  bytes until the connection ends. The request's after-request hooks then run
  once for the whole connection: one access-log line with its duration and
  bytes, its metrics.
"""

from __future__ import annotations

import socket
from urllib.parse import unquote_plus

from flask import Response

from .. import state as request_state
from ..config import ServiceConfig
from ..errors import GatewayError
from ..telemetry.metrics import WEBSOCKET_BYTES, WEBSOCKETS_CLOSED, WEBSOCKETS_OPEN
from ..transport import Upstream
from ..transport.tunnel import Tunnel, UpstreamHandshake, buffered, handshake
from .headers import DROP_FROM_RESPONSE, connection_listed, end_to_end
from .slots import ConnectionSlots, Slot

#: Response headers of a 101 the gateway writes itself
UPGRADE_HEADERS = (("Upgrade", "websocket"), ("Connection", "Upgrade"))


def is_handshake(environ: dict) -> bool:
    """A WebSocket opening handshake (RFC 6455 §4.1): GET, ``Upgrade: websocket``
    and the ``upgrade`` token in ``Connection`` (``keep-alive, Upgrade`` counts)."""
    return (environ["REQUEST_METHOD"] == "GET"
            and environ.get("HTTP_UPGRADE", "").strip().lower() == "websocket"
            and "upgrade" in connection_listed(environ.get("HTTP_CONNECTION")))


def without_parameter(query: str, name: str) -> str:
    """``query`` without any ``name=…`` pair (the other pairs keep their bytes)."""
    return "&".join(pair for pair in query.split("&")
                    if unquote_plus(pair.partition("=")[0]) != name)


def early_client_bytes(environ: dict, client: socket.socket) -> bytes:
    """What the server read from the client beyond the handshake's headers: a client
    may send its first frames at once, in the same packet or before the 101 comes."""
    stream = environ.get("wsgi.input")
    unreader = getattr(getattr(stream, "reader", None), "unreader", None)
    if unreader is not None and hasattr(unreader, "take_buffered"):  # gunicorn's parser
        return unreader.take_buffered()
    if "werkzeug.socket" in environ and hasattr(stream, "read1"):  # werkzeug's rfile
        return buffered(stream, client)
    return b""


def client_socket(environ: dict) -> socket.socket | None:
    """The client's connection, from a server that hands it over (gunicorn, werkzeug)."""
    return environ.get("gunicorn.socket") or environ.get("werkzeug.socket")


class TunnelledResponse(Response):
    """What the view returns once a WebSocket connection has ended.

    The after-request hooks see it (status 101, the bytes each way); the WSGI
    server must send nothing more on a connection that is no longer HTTP: it is
    told the connection is over the way each server understands.
    """

    def __init__(self, bytes_sent: int, bytes_received: int):
        super().__init__(status=101)
        self.bytes_sent = bytes_sent
        self.bytes_received = bytes_received

    def __call__(self, environ, start_response):
        self.close()  # runs what waits for the end of the exchange (access log, metrics)
        if "gunicorn.socket" in environ:
            raise StopIteration  # gunicorn closes the connection without a word
        raise ConnectionError("WebSocket connection ended")  # werkzeug: a dropped connection


class WebSocketRelay:
    """One service's WebSocket handshakes and connections."""

    def __init__(self, service: ServiceConfig, upstream: Upstream, slots: ConnectionSlots):
        self.service = service
        self.settings = service.websocket
        self.upstream = upstream
        self.slots = slots
        name = service.name
        self.open_gauge = WEBSOCKETS_OPEN.labels(name)
        self.bytes = {d: WEBSOCKET_BYTES.labels(name, d) for d in ("to_client", "to_upstream")}

    def query_for_upstream(self, query: str) -> str:
        if self.settings is not None and self.settings.credentials_query and query:
            return without_parameter(query, self.settings.credentials_query)
        return query

    def open(self, environ: dict, target_path: str, headers: dict[str, str],
             upstream: Upstream | None = None) -> Response:
        """Pass a handshake upstream; after a 101, carry the connection to its end.

        :param upstream: the targets to use (a canary's); default: the service's.
        """
        settings = self.settings
        if settings is None:
            raise GatewayError(400, "websocket_not_enabled",
                               f"the {self.service.name} service does not take WebSocket "
                               f"connections; set services.{self.service.name}.websocket: true "
                               "to pass them through")
        client = client_socket(environ)
        if client is None:
            raise GatewayError(501, "websocket_not_supported",
                               "this deployment of the gateway cannot carry WebSocket "
                               "connections (the server does not hand over its connections)")
        for name in ("Content-Length", "Content-Type"):
            headers.pop(name, None)
        headers.update(UPGRADE_HEADERS)
        state = request_state.current()
        slot = self.slots.take(self.service.name, state.caller(), settings.max_per_consumer)
        try:
            answer = handshake(upstream or self.upstream, target_path, headers)
            if answer.status != 101:
                return self.relay_refusal(answer)
            return self.carry(client, answer, slot, early_client_bytes(environ, client))
        finally:
            slot.release()

    def relay_refusal(self, answer: UpstreamHandshake) -> Response:
        """An upstream that did not switch protocols: its answer, as for any request."""
        headers = end_to_end(answer.headers.items(), DROP_FROM_RESPONSE,
                             answer.headers.get("connection"))

        def body():
            try:
                while chunk := answer.read1():
                    yield chunk
            finally:
                answer.close()
        return Response(body(), status=f"{answer.status} {answer.reason}".strip(),
                        headers=headers, direct_passthrough=True)

    def carry(self, client: socket.socket, answer: UpstreamHandshake, slot: Slot,
              early: bytes = b"") -> Response:
        settings = self.settings
        assert settings is not None
        state = request_state.current()
        head = [f"HTTP/1.1 101 {answer.reason or 'Switching Protocols'}",
                *(f"{k}: {v}" for k, v in UPGRADE_HEADERS),
                *(f"{k}: {v}" for k, v in end_to_end(answer.headers.items(), DROP_FROM_RESPONSE,
                                                      answer.headers.get("connection"))),
                f"X-Request-ID: {state.request_id}"]
        try:
            # small frames go out at once, as nginx's tcp_nodelay does for WebSockets
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        except OSError:
            answer.close()
            WEBSOCKETS_CLOSED.labels(self.service.name, "client").inc()
            return TunnelledResponse(0, 0)
        bytes_counters = self.bytes
        tunnel = Tunnel(client, answer, idle_timeout=settings.idle_timeout,
                        max_lifetime=settings.max_lifetime,
                        on_bytes=lambda direction, count: bytes_counters[direction].inc(count),
                        every=(slot.refresh_every, slot.refresh) if slot.refresh_every else None,
                        early=early)
        self.open_gauge.inc()
        try:
            traffic = tunnel.run()
        finally:
            self.open_gauge.dec()
            WEBSOCKETS_CLOSED.labels(self.service.name, tunnel.traffic.reason or "error").inc()
        return TunnelledResponse(traffic.to_client, traffic.to_upstream)
