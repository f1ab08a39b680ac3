"""A service's OpenAPI document that could not be fetched at start, fetched again until it comes.

A service with ``validate`` and ``openapi`` needs its document to check
requests. When the fetch at start gets no answer, a non-200 answer or
something that is not an OpenAPI document, the document is *missing*: a
:class:`PendingDocument` fetches it again in the background, 1 s after the
first try, then backing off to at most :data:`MAX_DELAY` between tries,
until one succeeds. Meanwhile the validate step refuses requests (503
``validation_unavailable``, ``Retry-After`` the seconds to the next try) or,
with ``on_missing_document: pass``, lets them through unvalidated.

A copy kept from an earlier fetch (gateway/openapi/sources.py) counts as the
document: the service is validated against it while the fresh one is
fetched all the same.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

from ..config import ServiceConfig
from ..transport import Upstream
from . import sources

log = logging.getLogger("gateway.validation")

#: seconds before the first try again; each failure doubles it, up to MAX_DELAY
FIRST_DELAY = 1.0
MAX_DELAY = 30.0


class Backoff:
    """When to try next: 1 s, 2 s, 4 s … at most :data:`MAX_DELAY` after each failure."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.delay = FIRST_DELAY
        self.due = clock() + FIRST_DELAY

    def failed(self) -> None:
        self.delay = min(self.delay * 2, MAX_DELAY)
        self.due = self.clock() + self.delay

    def seconds_left(self) -> float:
        return max(0.0, self.due - self.clock())

    def retry_after(self) -> int:
        """Whole seconds to the next try, at least 1 (the ``Retry-After`` header)."""
        return max(1, math.ceil(self.seconds_left()))


class PendingDocument:
    """One service's document, fetched in a thread of its own until it arrives."""

    def __init__(self, service: ServiceConfig, upstream: Upstream, problem: str,
                 have_copy: bool, clock: Callable[[], float] = time.monotonic):
        """:param problem: why the fetch at start failed.
        :param have_copy: a copy kept from an earlier fetch stands in meanwhile."""
        assert service.openapi
        self.service = service
        self.upstream = upstream
        self.url = upstream.targets[0].url.rstrip("/") + service.openapi
        self.problem = problem
        self.backoff = Backoff(clock)
        #: True until a document is in hand (the copy counts)
        self.waiting = not have_copy
        self._arrived: list[Callable[[dict], None]] = []
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def warn(self, on_missing: str) -> None:
        """The WARNING an operator needs: which service, which URL, what happens meanwhile."""
        name = self.service.name
        if not self.waiting:
            log.warning("services.%s.validate: the OpenAPI document at %s could not be fetched "
                        "(%s); requests are validated against the copy fetched earlier, and it "
                        "is fetched again in the background", name, self.url, self.problem)
        elif on_missing == "pass":
            log.warning("services.%s.validate: the OpenAPI document at %s could not be fetched "
                        "(%s); requests pass unvalidated (on_missing_document: pass) until it "
                        "arrives; fetched again in the background", name, self.url,
                        self.problem)
        else:
            log.warning("services.%s.validate: the OpenAPI document at %s could not be fetched "
                        "(%s); every request is refused 503 validation_unavailable until it "
                        "arrives (fetched again in the background); set "
                        "validate.on_missing_document: pass to let them through unvalidated",
                        name, self.url, self.problem)

    def on_arrival(self, callback: Callable[[dict], None]) -> None:
        self._arrived.append(callback)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, daemon=True,
                                            name=f"gateway-openapi-{self.service.name}")
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def try_once(self) -> bool:
        """One fetch; True when the document came (the callbacks have it)."""
        document, problem = sources.fetch(self.service, self.upstream)
        if document is None:
            self.problem = problem or "no document"
            self.backoff.failed()
            return False
        sources.keep(self.service, document)
        log.warning("services.%s.validate: the OpenAPI document at %s has arrived; requests "
                    "are validated against it", self.service.name, self.url)
        for callback in self._arrived:
            callback(document)
        self.waiting = False
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.backoff.seconds_left()):
            try:
                if self.try_once():
                    return
            except Exception:  # a bug here must not end the tries
                log.exception("fetching %s failed", self.url)
                self.backoff.failed()
