"""Request mirroring: a copy of a sampled request goes to the mirror, and nobody waits for it.

The copy is the request as it went to the primary: method, path and query
after ``strip_prefix`` and transforms, the headers the primary got (request
id and consumer included) plus ``X-Gateway-Mirror: 1``, and the body when it
is at most ``max_body_bytes`` (larger ones are not mirrored: ``too_large``).
It is sent from a thread of its own (a greenlet under gevent) once the
client's request has been read, at most ``max_in_flight`` at once per worker
(beyond that a copy is ``dropped``), never retried, and its answer is read
and thrown away. ``gateway_mirror_requests_total{service,result}`` counts
``sent`` (an answer came back, whatever its status), ``failed`` (no answer),
``dropped`` and ``too_large``.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Iterator

from ..config import ServiceConfig
from ..transport import Reach, Upstream, UpstreamError
from .requestbody import RequestBody, TooLarge

log = logging.getLogger("gateway.mirror")

HEADER = "X-Gateway-Mirror"


class Mirror:
    """One service's mirror."""

    def __init__(self, service: ServiceConfig, pool_size: int,
                 count: Callable[[str], None] | None = None):
        """:param count: ``f(result)`` for each copy: sent, failed, dropped, too_large."""
        config = service.mirror
        assert config is not None
        self.config = config
        # the service's TLS settings, the mirror's own target and timeout; no retries
        # nor breaker, and the default call hooks: a copy touches no client's state
        self.upstream = Upstream(Reach(service.name, (config.upstream,),
                                       connect_timeout=min(config.timeout, 2.0),
                                       read_timeout=config.timeout, tls=service.tls),
                                 min(pool_size, config.max_in_flight))
        self.slots = threading.BoundedSemaphore(config.max_in_flight)
        self.count = count or (lambda result: None)

    def sampled(self) -> bool:
        return self.config.percent >= 100 or random.random() * 100 < self.config.percent

    def read_for_copy(self, body: RequestBody, limit: int) -> None:
        """Read the request body now, up to the mirror's ``max_body_bytes`` and the route's
        cap, so that the primary is sent it whole when a copy can be made (a larger one
        goes on as it comes: what was read, then the rest)."""
        try:
            body.whole(min(self.config.max_body_bytes, limit))
        except TooLarge:
            pass

    def copy_of(self, body: Iterator[bytes] | bytes | None) -> bytes | None:
        """The copy's body: the bytes the primary was sent, when they are at most
        ``max_body_bytes`` (None: no body, or too large to mirror)."""
        if isinstance(body, bytes) and len(body) <= self.config.max_body_bytes:
            return body
        return None

    def send(self, method: str, target: str, headers: dict[str, str],
             body: bytes | None) -> None:
        """Send the copy in the background, or count why not."""
        if not self.slots.acquire(blocking=False):
            self.count("dropped")
            return
        copy = {**headers, HEADER: "1"}
        if body is not None and not any(k.lower() == "content-length" for k in copy):
            copy["Content-Length"] = str(len(body))
        for name in [k for k in copy if k.lower() == "transfer-encoding"]:
            del copy[name]
        threading.Thread(target=self._send, args=(method, target, copy, body),
                         daemon=True).start()

    def _send(self, method: str, target: str, headers: dict[str, str],
              body: bytes | None) -> None:
        try:
            answer = self.upstream.send(method, target, headers, body, can_retry=False)
            try:
                while answer.read1(65536):
                    pass
            finally:
                answer.release()
            self.count("sent")
        except UpstreamError as exc:
            self.count("failed")
            log.info("mirror %s: %s", self.config.upstream, exc.kind)
        finally:
            self.slots.release()
