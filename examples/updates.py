"""The example shop's live order updates: a WebSocket backend (the ``websockets`` library).

A client that connects gets an order's status as it changes, one JSON message
every two seconds (``{"order": 1, "status": "packed"}``); a text message it
sends (an order number) switches which order it follows. The gateway carries
it at ``/updates`` (examples/gateway.yaml).
"""

from __future__ import annotations

import json
import threading

STATUSES = ("received", "paid", "packed", "shipped", "delivered")


def _follow(connection) -> None:
    from websockets.exceptions import ConnectionClosed
    order, step = 1, 0
    try:
        while True:
            connection.send(json.dumps({"order": order, "status": STATUSES[step]}))
            step = (step + 1) % len(STATUSES)
            try:
                asked = connection.recv(timeout=2)
            except TimeoutError:
                continue
            if isinstance(asked, str) and asked.strip().isdigit():
                order, step = int(asked), 0
    except ConnectionClosed:
        pass


def serve_updates(host: str, port: int):
    """Serve the updates in a background thread; the server has ``shutdown()``."""
    from websockets.sync.server import serve
    server = serve(_follow, host, port)
    threading.Thread(target=server.serve_forever, daemon=True, name="updates").start()
    return server
