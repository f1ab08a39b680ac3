"""The upstream's answer body on its way to the client, and who watches it.

:class:`UpstreamBody` is handed to the WSGI server as the response iterable:
each ``read1`` returns what has arrived (a server-sent event, one JSON line)
instead of waiting for a full buffer. Whatever needs to see the body (the
response cache records it, the access log and metrics time it, later
transformation and tracing) subscribes a :class:`BodyObserver` instead of
being written into the loop.
"""

from __future__ import annotations

from collections.abc import Callable

from .answer import Answer
from .errors import UpstreamError

READ_CHUNK = 64 * 1024

#: Answers that are a stream of events or lines (server-sent events, JSON lines):
#: relayed as they come, never stored, reshaped or buffered.
STREAM_TYPES = frozenset({"text/event-stream", "application/x-ndjson", "application/jsonl",
                          "application/json-seq"})


def is_stream(content_type: str | None) -> bool:
    """Whether a ``Content-Type`` is one of :data:`STREAM_TYPES` (parameters ignored)."""
    return bool(content_type) and \
        content_type.partition(";")[0].strip().lower() in STREAM_TYPES  # type: ignore[union-attr]


class BodyObserver:
    """Watches one streamed body; override what you need."""

    #: set to False by observers that do not look at the bytes (cheaper loop)
    wants_chunks = True

    def on_chunk(self, chunk: bytes) -> None:
        """A piece of the body, just before it goes to the client."""

    def on_complete(self) -> None:
        """The whole body was read, before the WSGI server ends the response."""

    def on_close(self, body: UpstreamBody) -> None:
        """The exchange is over: finished, failed, or the client went away."""


class BodyCopy(BodyObserver):
    """Keeps a copy of a streamed body as long as it stays within ``limit`` bytes."""

    def __init__(self, limit: int):
        self.limit = limit
        #: None once the body has grown past the limit (or the copy was taken)
        self.chunks: list[bytes] | None = []
        self.size = 0

    def on_chunk(self, chunk: bytes) -> None:
        if self.chunks is None:
            return
        self.size += len(chunk)
        if self.size > self.limit:
            self.chunks = None
        else:
            self.chunks.append(chunk)

    def take(self) -> bytes | None:
        """The whole copy, once; None when the body was too long."""
        if self.chunks is None:
            return None
        data, self.chunks = b"".join(self.chunks), None
        return data


class UpstreamBody:
    """The upstream response body as a WSGI iterable, streamed chunk by chunk.

    ``close`` (called by the WSGI server, also when the client goes away)
    returns the connection to the pool if the body was read to the end, and
    closes it otherwise.
    """

    def __init__(self, answer: Answer, first: bytes = b""):
        """:param first: bytes already read from ``answer``, sent before the rest."""
        self.answer = answer
        self.first = first
        self.bytes_sent = 0
        self.complete = False
        self.closed = False
        self.error: UpstreamError | None = None
        self.observers: list[BodyObserver] = []
        self._chunk_observers: list[BodyObserver] = []

    def subscribe(self, observer: BodyObserver) -> None:
        self.observers.append(observer)
        if observer.wants_chunks:
            self._chunk_observers.append(observer)

    def __iter__(self):
        answer = self.answer
        watchers = self._chunk_observers
        try:
            chunk = self.first
            while chunk or not answer.finished:
                if not chunk:
                    chunk = answer.read1(READ_CHUNK)
                    if not chunk:
                        break
                self.bytes_sent += len(chunk)
                for observer in watchers:
                    observer.on_chunk(chunk)
                yield chunk
                chunk = b""
            self.complete = True
            for observer in self.observers:
                observer.on_complete()
        except UpstreamError as exc:
            # The status line is already out: the only honest signal left is to
            # cut the body short, so the WSGI server aborts the client connection.
            self.error = exc
            raise

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.answer.release()
        for observer in self.observers:
            observer.on_close(self)


class _WhenSent(BodyObserver):
    wants_chunks = False

    def __init__(self, callback: Callable[[int, UpstreamError | None], None]):
        self.callback = callback

    def on_close(self, body: UpstreamBody) -> None:
        self.callback(body.bytes_sent, body.error)


def when_sent(response, callback: Callable[[int, UpstreamError | None], None]) -> None:
    """Call ``callback(bytes_sent, error)`` once the response body has gone out.

    For a streamed upstream body that is when the WSGI server closes it; for
    anything else, when werkzeug closes the response.
    """
    body = response.response
    if isinstance(body, UpstreamBody):
        body.subscribe(_WhenSent(callback))
    else:
        # a response that counted its own bytes (a WebSocket's, which has no body) says so
        response.call_on_close(lambda: callback(
            getattr(response, "bytes_sent", None) or response.content_length or 0, None))
