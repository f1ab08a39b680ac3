"""One upstream answer with its body still to read: the only face of urllib3 the gateway shows.

:class:`Answer` is what :meth:`~.upstream.Upstream.send` returns: status,
reason and headers, and the body as a stream (:meth:`Answer.read1`) or a
bounded read (:meth:`Answer.read_up_to`). Reading translates every failure
into an :class:`~.errors.UpstreamError`, and :meth:`Answer.release` gives the
connection back to the pool when the body was read to its end, or closes it
when bytes are left that no one will read. Nothing outside the transport sees
a urllib3 response.
"""

from __future__ import annotations

from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.response import BaseHTTPResponse

from .errors import UpstreamError, translate


class Answer:
    """A service's answer: status line and headers read, body unread."""

    def __init__(self, raw: BaseHTTPResponse, target: str):
        self._raw = raw
        #: the target URL that answered
        self.target = target
        self.status: int = raw.status
        self.reason: str = raw.reason or ""
        #: case-insensitive; ``items()`` yields each repeated header on its own
        self.headers = raw.headers
        #: the body was read to its end: the connection may be reused
        self.finished = raw.length_remaining == 0

    def read1(self, size: int) -> bytes:
        """What has arrived, up to ``size`` bytes; ``b""`` at the end of the body."""
        try:
            chunk = self._raw.read1(size, decode_content=False)
        except (Urllib3Error, OSError) as exc:
            raise self._failed(exc) from None
        if not chunk or self._raw.length_remaining == 0:
            self.finished = True
        return chunk

    def read_up_to(self, limit: int, decode: bool = False) -> bytes:
        """The body, if it is at most ``limit`` bytes (the connection then goes
        back to the pool); else its first ``limit + 1`` bytes, the rest left to
        :meth:`read1` or to :meth:`release`.

        :param decode: undo the answer's ``Content-Encoding`` (gzip, deflate…).
        :raises UpstreamError: the service broke off its answer (connection closed).
        """
        try:
            data = self._raw.read(limit + 1, decode_content=decode)
        except (Urllib3Error, OSError) as exc:
            raise self._failed(exc) from None
        if len(data) <= limit:
            self.finished = True
            self.release()
        return data

    def release(self) -> None:
        """Give the connection back when the body was read to its end; close it otherwise.
        Safe to call more than once."""
        if not self.finished and self._raw.length_remaining != 0:
            self._raw.close()  # unread bytes: the connection cannot be reused
        self._raw.release_conn()

    def discard(self) -> None:
        """Close the connection whatever was read (a broken answer)."""
        self._raw.close()
        self._raw.release_conn()

    def _failed(self, exc: Exception) -> UpstreamError:
        self.discard()
        return translate(exc, self.target)
