"""Just enough of WebSocket framing (RFC 6455 §5.2) for a gateway that relays frames untouched.

The tunnel never decodes a message: it passes bytes as they come. It only
needs to know where one frame ends, so that a Close frame of its own (an idle
or too-old connection, a stopping worker) goes out between two frames and
never inside one. :class:`FrameBoundaries` follows the frame headers of a byte
stream and skips payloads by their length; :func:`close_frame` builds the
Close frame, masked toward the upstream as a client's must be.
"""

from __future__ import annotations

import os
import struct

#: RFC 6455 §7.4.1: the endpoint is going away (a server going down, or the
#: gateway ending an idle or too-old connection)
GOING_AWAY = 1001


class FrameBoundaries:
    """Where frames end in one direction of a WebSocket byte stream."""

    def __init__(self) -> None:
        self._header = bytearray()
        self._payload_left = 0
        #: a Close frame has started in this direction (its side is closing)
        self.closing = False

    @property
    def at_boundary(self) -> bool:
        """Everything fed so far ends with a whole frame."""
        return not self._header and self._payload_left == 0

    def feed(self, data: bytes) -> None:
        at, end = 0, len(data)
        while at < end:
            if self._payload_left:
                step = min(self._payload_left, end - at)
                self._payload_left -= step
                at += step
                continue
            need = _header_length(self._header) - len(self._header)
            self._header += data[at:at + need]
            at += min(need, end - at)
            if len(self._header) == _header_length(self._header):
                self._payload_left = _payload_length(self._header)
                self.closing = self.closing or self._header[0] & 0x0F == 0x8
                self._header.clear()


def _header_length(header: bytes | bytearray) -> int:
    """The length of a frame header, as far as its first bytes tell it."""
    if len(header) < 2:
        return 2
    length = header[1] & 0x7F
    extended = 2 if length == 126 else 8 if length == 127 else 0
    return 2 + extended + (4 if header[1] & 0x80 else 0)


def _payload_length(header: bytes | bytearray) -> int:
    length = header[1] & 0x7F
    if length == 126:
        return int(struct.unpack("!H", header[2:4])[0])
    if length == 127:
        return int(struct.unpack("!Q", header[2:10])[0])
    return length


def close_frame(code: int, reason: str = "", masked: bool = False) -> bytes:
    """A Close frame with ``code`` and ``reason`` (at most 123 bytes of UTF-8).

    :param masked: masked with a random key, as a frame from a client must be
        (toward the upstream); unmasked toward the client.
    """
    payload = struct.pack("!H", code) + reason.encode()[:123]
    if not masked:
        return bytes((0x88, len(payload))) + payload
    key = os.urandom(4)
    return bytes((0x88, 0x80 | len(payload))) + key + bytes(
        byte ^ key[i % 4] for i, byte in enumerate(payload))
