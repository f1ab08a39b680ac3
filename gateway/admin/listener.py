"""Which app a request is for: the one whose socket it arrived on.

gunicorn listens on the public address and on ``admin.listen`` and every
worker serves both; the address the connection was accepted on (its socket's
own name, which a client cannot forge) decides, never the Host header. A
request with no socket to ask (``flask run``, the test client) is public.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable

WILDCARDS = ("", "0.0.0.0", "::", "[::]")


def parse_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


class AdminListener:
    """WSGI middleware: requests accepted on ``listen`` go to ``admin``, the rest on."""

    def __init__(self, public: Callable, admin: Callable, listen: str):
        self.public = public
        self.admin = admin
        host, self.port = parse_listen(listen)
        self.any_host = host in WILDCARDS
        self.addresses = {host, *_resolved(host)}  # localhost is 127.0.0.1 on the socket

    def arrived_on_admin(self, environ: dict) -> bool:
        connection = environ.get("gunicorn.socket")
        if not isinstance(connection, socket.socket):
            return False
        try:
            local = connection.getsockname()
        except OSError:
            return False
        if not isinstance(local, tuple):  # a unix socket: the public listener's kind
            return False
        return local[1] == self.port and (self.any_host or local[0] in self.addresses)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if self.arrived_on_admin(environ):
            return self.admin(environ, start_response)
        return self.public(environ, start_response)


def _resolved(host: str) -> set[str]:
    try:
        return {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
    except OSError:
        return set()
