"""The request's body: read from the client at most once, whoever asks first.

Validation checks it, a request transform reshapes it, the mirror copies it,
the proxy sends it on. Each asks the one :class:`RequestBody` on the
request's state (:func:`body_of`) instead of reading the stream its own way:
``whole(cap)`` reads it into memory up to a cap (once: a second caller gets
the same bytes), :meth:`RequestBody.for_upstream` hands the proxy what was
read followed by the rest of the stream, never the whole of a large body in
memory. The cap is the route's ``max_body_bytes`` when it has one
(:func:`buffer_limit`), else :data:`DEFAULT_BUFFER`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from flask import request

from .. import state as request_state
from ..errors import GatewayError
from ..transport import READ_CHUNK

#: The most of a body read into memory for a route without ``max_body_bytes``.
DEFAULT_BUFFER = 1024 * 1024


class TooLarge(Exception):
    """The body is larger than the cap it was asked for under."""


def buffer_limit(max_body_bytes: int | None) -> int:
    """The one cap on a body read into memory: the route's ``max_body_bytes``, else 1 MiB."""
    return max_body_bytes if max_body_bytes is not None else DEFAULT_BUFFER


def body_of() -> RequestBody:
    """The request's body object, made on first use."""
    state = request_state.current()
    if state.request_body is None:
        state.request_body = RequestBody(request.environ, request.stream)
    return state.request_body


class RequestBody:
    """One request's body and what has been read of it."""

    def __init__(self, environ: dict, stream):
        length = environ.get("CONTENT_LENGTH")
        #: the announced length (None: chunked, or no body)
        self.length = int(length) if length and length.isdigit() and int(length) else None
        self.chunked = self.length is None and \
            "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        self.stream = stream
        self.taken: list[bytes] = []
        self.size = 0
        self.ended = not self.present

    @property
    def present(self) -> bool:
        return self.length is not None or self.chunked

    def whole(self, cap: int) -> bytes | None:
        """The body, read into memory now (or already), None when there is none.

        :raises TooLarge: it is larger than ``cap``; what was read is kept, and goes
            upstream first.
        """
        if not self.present:
            return None
        if self.length is not None and self.length > cap:
            raise TooLarge(self.length)
        while not self.ended and self.size <= cap:
            self._read_one(min(READ_CHUNK, cap + 1 - self.size))
        if self.size > cap:
            raise TooLarge(self.size)
        return b"".join(self.taken)

    def _read_one(self, most: int) -> None:
        if self.length is not None:
            most = min(most, self.length - self.size)
        chunk = self.stream.read(most) if most > 0 else b""
        if chunk:
            self.taken.append(chunk)
            self.size += len(chunk)
        if self.length is not None:
            if not chunk and self.size < self.length:
                raise _incomplete(self.length, self.size)
            self.ended = self.size >= self.length
        elif not chunk:
            self.ended = True

    def for_upstream(self) -> tuple[Iterator[bytes] | bytes | None, bool]:
        """What the proxy sends, and whether it goes chunked: the whole body when it has
        been read, else what was read followed by the rest as it comes."""
        if not self.present:
            return None, False
        if self.ended:
            return b"".join(self.taken), False
        return itertools.chain(self.taken, self._rest()), self.chunked

    def _rest(self) -> Iterator[bytes]:
        """The body not read yet, in fixed chunks (never all at once).

        A client that goes away mid-upload ends the stream early (gunicorn gives
        a short read, not an error): raising here, inside urllib3's send, closes
        the upstream connection at once, instead of leaving the upstream waiting
        for bytes that will never come until its read timeout.
        """
        while not self.ended:
            before = self.size
            self._read_one(READ_CHUNK)
            if self.size > before:
                chunk = self.taken.pop()  # streamed on, not kept
                yield chunk


def _incomplete(length: int, received: int) -> GatewayError:
    return GatewayError(400, "incomplete_body", f"the client sent {received} of the {length} "
                        "bytes its Content-Length announced, then stopped")
