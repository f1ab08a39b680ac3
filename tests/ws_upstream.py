"""A real WebSocket upstream for the tests (the ``websockets`` library), on loopback.

Paths choose the behaviour (by a segment anywhere in them):

- ``/echo…``: every message back as it came (text or binary); subprotocols
  ``chat.v2`` and ``chat.v1`` offered, permessage-deflate on;
- ``/hangup``: closes with code 4000 after the first message;
- ``/quiet``: says nothing, answers nothing;
- ``/refuse``: answers the handshake with 403 and a JSON body.

Each handshake's path and headers are kept (``handshakes``), and each ended
connection's close code as the upstream saw it (``closed``).
"""

from __future__ import annotations

import http
import threading

from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve


class WebSocketUpstream:
    def __init__(self) -> None:
        self.handshakes: list[tuple[str, dict[str, str]]] = []
        self.closed: list[int | None] = []
        self.ended = threading.Condition()
        self.server = serve(self._handle, "127.0.0.1", 0, process_request=self._check,
                            subprotocols=["chat.v2", "chat.v1"], max_size=None,
                            select_subprotocol=self._subprotocol)
        self.port = self.server.socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @staticmethod
    def _subprotocol(connection: ServerConnection, offered):
        return next((p for p in ("chat.v2", "chat.v1") if p in offered), None)

    def _check(self, connection: ServerConnection, request):
        self.handshakes.append((request.path, {k.lower(): v for k, v in request.headers.raw_items()}))
        if "/refuse" in request.path:
            return connection.respond(http.HTTPStatus.FORBIDDEN, '{"error": "nope"}\n')
        return None

    def _handle(self, connection: ServerConnection) -> None:
        path = connection.request.path if connection.request else ""
        try:
            if "/hangup" in path:
                connection.recv()
                connection.close(4000, "upstream hangs up")
            elif "/quiet" in path:
                for _ in connection:
                    pass
            else:
                for message in connection:
                    connection.send(message)
        except ConnectionClosed:
            pass
        finally:
            with self.ended:
                self.closed.append(connection.close_code)
                self.ended.notify_all()

    def wait_closed(self, count: int, timeout: float) -> bool:
        """Whether ``count`` connections have ended here within ``timeout`` seconds."""
        with self.ended:
            return self.ended.wait_for(lambda: len(self.closed) >= count, timeout=timeout)

    def stop(self) -> None:
        self.server.shutdown()


__all__ = ["Headers", "WebSocketUpstream"]
