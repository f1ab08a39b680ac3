"""A WebSocket handshake with an upstream, and the byte tunnel after its ``101``.

:func:`handshake` opens a connection of its own to one of the service's
targets (a WebSocket cannot share a pooled connection: it keeps it), made by
the target's pool so that TLS is set up as for every other call, sends the
client's handshake and reads the answer's status line and headers.

:class:`Tunnel` then carries bytes both ways, untouched: the request's own
greenlet (a thread under ``flask run``) relays the client's and keeps the
time, one more relays the upstream's, until either side closes, the connection has been idle too long or
lived too long, or the worker stops. The side that stays is closed at once.
When the gateway ends a connection itself it first sends each side a Close
frame (1001, going away) between two of that side's frames.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import UpstreamError
from .frames import GOING_AWAY, FrameBoundaries, close_frame
from .upstream import NOT_SENT, Target, Upstream

READ_CHUNK = 64 * 1024
#: How often the bytes carried are reported (``on_bytes``) while a tunnel is open: a
#: metric update per message would cost more than relaying a small one.
REPORT_EVERY = 5.0
#: How long the gateway waits for both sides to answer its Close before it
#: closes their connections.
CLOSE_GRACE = 1.0

#: Why a tunnel ended (the ``reason`` label of ``gateway_websocket_closed_total``).
REASONS = ("client", "upstream", "idle", "lifetime", "shutdown", "error")


@dataclass
class UpstreamHandshake:
    """The upstream's answer to a handshake: status line and headers read."""

    status: int
    reason: str
    headers: http.client.HTTPMessage
    target: str
    sock: socket.socket
    #: the answer read so far; reads what came after the headers first
    response: http.client.HTTPResponse
    #: after a 101: what the upstream sent right behind its headers, read with them
    leftover: bytes = b""

    def read1(self, size: int = READ_CHUNK) -> bytes:
        if self.status != 101:
            return self.response.read1(size)
        if self.leftover:
            data, self.leftover = self.leftover, b""
            return data
        return self.sock.recv(size)

    def take_leftover(self) -> None:
        """After a 101: take what the header parser holds beyond the headers, so that
        the tunnel reads the socket itself (one layer less per message)."""
        self.leftover = buffered(self.response.fp, self.sock)

    def close(self) -> None:
        _close(self.sock)
        try:
            self.response.close()
        except RuntimeError:  # still being read by a pump that outlived its join
            pass


def handshake(upstream: Upstream, target_path: str, headers: dict[str, str]) -> UpstreamHandshake:
    """Send a WebSocket handshake to the service, through the attempt loop every call
    takes (:meth:`Upstream.attempt`): breakers, failover, up to 1 + ``retries`` attempts
    before the ``101``, as for an idempotent GET.

    :param target_path: raw ``/path?query`` relative to the target's base URL.
    :raises UpstreamError: no target could be reached or it broke off its answer.
    """
    def send(target: Target) -> UpstreamHandshake:
        sock = _connect(target)
        try:
            lines = [f"GET {target.base_path + target_path} HTTP/1.1",
                     f"Host: {target.host_header}"]
            lines += [f"{name}: {value}" for name, value in headers.items()
                      if name.lower() != "host" and value != NOT_SENT]
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            sock.settimeout(upstream.reach.read_timeout)
            response = http.client.HTTPResponse(sock, method="GET")
            response.begin()
            sock.settimeout(None)
        except BaseException:
            _close(sock)
            raise
        return UpstreamHandshake(response.status, response.reason or "", response.msg,
                                 target.url, sock, response)

    answer, _ = upstream.attempt("GET", headers, send, lambda answer: answer.status)
    if answer.status == 101:
        answer.take_leftover()
    return answer


def buffered(reader, sock: socket.socket) -> bytes:
    """What a buffered reader of ``sock`` holds beyond what was parsed, without waiting
    for more: the bytes a peer sent right behind its headers, in the same packet."""
    sock.setblocking(False)
    try:
        # buffered bytes only, or one read that finds nothing waiting
        return reader.read1(READ_CHUNK) or b""
    except BlockingIOError:
        return b""
    finally:
        sock.setblocking(True)


def _connect(target: Target) -> socket.socket:
    """A new connection to ``target``, made (and TLS set up) as its pool makes them."""
    connection = target.pool._new_conn()  # type: ignore[attr-defined]
    connection.connect()
    return connection.sock  # type: ignore[attr-defined]


@dataclass
class Traffic:
    """What crossed a tunnel, and how it ended."""

    to_client: int = 0
    to_upstream: int = 0
    reason: str = ""
    started: float = field(default_factory=time.monotonic)


class Tunnel:
    """Bytes both ways between a client and an upstream after the upstream's ``101``."""

    def __init__(self, client: socket.socket, upstream: UpstreamHandshake, *,
                 idle_timeout: float, max_lifetime: float = 0.0,
                 on_bytes: Callable[[str, int], None] | None = None,
                 every: tuple[float, Callable[[], None]] | None = None,
                 clock: Callable[[], float] = time.monotonic, early: bytes = b""):
        """
        :param early: what the client sent right behind its handshake, which the
            server read with the headers: relayed first.
        :param on_bytes: ``f(direction, count)``: bytes carried (``to_client``,
            ``to_upstream``) since the last call; every :data:`REPORT_EVERY` seconds and at the end.
        :param every: ``(seconds, f)``: ``f()`` runs that often while the tunnel is open.
        """
        self.client, self.upstream = client, upstream
        self.idle_timeout, self.max_lifetime = idle_timeout, max_lifetime
        self.on_bytes = on_bytes or (lambda direction, count: None)
        self._reported = {"to_client": 0, "to_upstream": 0}
        self.tasks = [(REPORT_EVERY, self._report_bytes), *([every] if every else [])]
        self.clock = clock
        self.traffic = Traffic(started=clock())
        self.last_activity = self.traffic.started
        self._saying_goodbye = False
        #: the side whose Close frame came first
        self._initiator = ""
        #: the upstream answered the gateway's Close (sent anything after it, or hung up)
        self._answered = threading.Event()
        self._sides = {
            "to_client": _Side(client, masked=False),
            "to_upstream": _Side(upstream.sock, masked=True),
        }
        self.early = early

    def run(self) -> Traffic:
        """Carry bytes until the connection ends; both connections are closed on return.

        The request's own thread (greenlet) relays what the client sends and keeps
        the time (idle, lifetime, periodic tasks) between reads; one more relays
        what the upstream sends.
        """
        relay = threading.Thread(target=self._relay_upstream, daemon=True)
        relay.start()
        try:
            reason = self._relay_client()
            if reason:
                self._say_goodbye(reason)
        except BaseException:  # the worker stops (gevent kills the request's greenlet)
            if self._end("shutdown"):
                self._say_goodbye("shutdown", grace=CLOSE_GRACE / 2)
            raise
        finally:
            # shut down first: a relay blocked reading a socket returns at once
            _shutdown(self.client)
            _shutdown(self.upstream.sock)
            relay.join(timeout=CLOSE_GRACE)
            self.client.close()
            self.upstream.close()
            self._report_bytes()
        return self.traffic

    def _relay_client(self) -> str | None:
        """Relay the client's bytes, and keep the time between them.

        :returns: the limit that ended the connection (idle, lifetime), or None
            when a side left.
        """
        side = self._sides["to_upstream"]
        if self.early:
            self._carried(side, self.early, "to_upstream", "client")
        deadline = self.traffic.started + self.max_lifetime if self.max_lifetime else None
        due = [self.traffic.started + period for period, _ in self.tasks]
        while True:
            now = self.clock()
            if now - self.last_activity >= self.idle_timeout:
                return self._end("idle")
            if deadline is not None and now >= deadline:
                return self._end("lifetime")
            for i, (period, task) in enumerate(self.tasks):
                if now >= due[i]:
                    task()
                    due[i] = now + period
            wake = min(self.last_activity + self.idle_timeout, *due,
                       *([deadline] if deadline is not None else []))
            try:
                self.client.settimeout(max(0.001, wake - now))
                data = self.client.recv(READ_CHUNK)
            except TimeoutError:
                continue
            except (OSError, ValueError):  # a reset, or the other relay closed the client
                data = b""
            if not data:
                self._end(self._initiator or "client")
                return None
            self._carried(side, data, "to_upstream", "client")

    def _relay_upstream(self) -> None:
        side = self._sides["to_client"]
        try:
            while True:
                data = self.upstream.read1(READ_CHUNK)
                if self._saying_goodbye:
                    self._answered.set()
                if not data:
                    break
                self._carried(side, data, "to_client", "upstream")
        except (OSError, ValueError):
            pass  # a reset, or our own close of the socket while this relay read it
        except Exception:
            self._end("error")
            raise
        finally:
            self._answered.set()
            if self._end(self._initiator or "upstream") and not self._saying_goodbye:
                _shutdown(self.client)  # the client's relay sees its end at once

    def _carried(self, side: _Side, data: bytes, direction: str, source: str) -> None:
        if side.relay(data):
            if side.frames.closing and not self._initiator:
                # who sent the first Close ended the connection, whoever hangs up last
                self._initiator = source
            self.last_activity = self.clock()
            setattr(self.traffic, direction, getattr(self.traffic, direction) + len(data))

    def _report_bytes(self) -> None:
        for direction, reported in self._reported.items():
            carried = getattr(self.traffic, direction)
            if carried > reported:
                self.on_bytes(direction, carried - reported)
                self._reported[direction] = carried

    def _end(self, reason: str) -> str | None:
        """The first reason wins; returns it when this call set it."""
        if self.traffic.reason:
            return None
        self.traffic.reason = reason
        return reason

    def _say_goodbye(self, reason: str, grace: float = CLOSE_GRACE) -> None:
        """A Close (1001) to each side between two of its frames, then a moment for
        their answers (the upstream hangs up after its Close; a client waits for us)."""
        self._saying_goodbye = True
        for side in self._sides.values():
            side.close_when_whole(f"gateway: {reason}")
        deadline = time.monotonic() + grace
        to_upstream, to_client = self._sides["to_upstream"], self._sides["to_client"]
        while time.monotonic() < deadline:  # the client's answer comes on our socket
            try:
                self.client.settimeout(max(0.001, deadline - time.monotonic()))
                data = self.client.recv(READ_CHUNK)
            except (OSError, ValueError):
                break
            if not data:
                break
            to_upstream.relay(data)  # the end of a frame in flight, then our Close
            if to_client.sent_close and to_upstream.sent_close:
                break  # the client answered our Close
        self._answered.wait(timeout=max(0.0, deadline - time.monotonic()))


class _Side:
    """Writes toward one side, and the Close frame the gateway may owe it."""

    def __init__(self, sock: socket.socket, masked: bool):
        self.sock, self.masked = sock, masked
        self.frames = FrameBoundaries()
        self.lock = threading.Lock()
        self.pending_close: str | None = None
        self.sent_close = False

    def relay(self, data: bytes) -> bool:
        """Pass ``data`` on, unless the gateway's Close went out already; True if passed."""
        with self.lock:
            if self.sent_close:
                return False  # the side's answer to our Close, or late frames: not relayed
            # one send() usually takes a whole message; gevent's sendall() would first ask
            # the socket its buffer size, a system call per message
            sent = self.sock.send(data)
            if sent < len(data):
                self.sock.sendall(memoryview(data)[sent:])
            self.frames.feed(data)
            if self.pending_close is not None and self.frames.at_boundary:
                self._send_close(self.pending_close)
            return True

    def close_when_whole(self, reason: str) -> None:
        with self.lock:
            if self.sent_close:
                return
            if self.frames.at_boundary:
                self._send_close(reason)
            else:
                self.pending_close = reason

    def _send_close(self, reason: str) -> None:
        self.sent_close = True
        try:
            self.sock.sendall(close_frame(GOING_AWAY, reason, masked=self.masked))
        except OSError:
            pass


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _close(sock: socket.socket) -> None:
    _shutdown(sock)
    sock.close()


__all__ = ["REASONS", "Traffic", "Tunnel", "UpstreamError", "UpstreamHandshake", "buffered",
           "handshake"]
