"""A worker's usage recorder: counts each finished request, hands the counts on in batches.

Each request that belongs to a service, blueprint or aggregate is counted as its
access-log line is written (same status, body bytes and duration), under its
consumer or :data:`~.tally.ANONYMOUS`. Every ``flush_seconds`` a background
thread (a greenlet under gevent) takes the tally and offers it to each
:class:`Outbox` (the database's usage table; the per-period counts that
``/_gateway/usage`` reads), which writes it in one call. An outbox whose write
fails keeps the rows, adds the next ones to them and tries again at the next
flush: bounded at :data:`MAX_PENDING` rows, the oldest dropped beyond it and
counted. A graceful stop, a reload and a recycled worker flush first
(gateway/serve/gunicorn_conf.py's ``worker_exit``, and ``atexit``); a killed
worker loses at most its last interval.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections.abc import Callable, Mapping

from .tally import ANONYMOUS, Key, Tally

log = logging.getLogger("gateway.usage")

#: Rows (consumer × service × hour) an outbox keeps while its destination is down.
MAX_PENDING = 100_000

#: Every live recorder of the process, so that a stopping worker flushes them all.
_RECORDERS: weakref.WeakSet[UsageRecorder] = weakref.WeakSet()


class Outbox:
    """The rows one destination has not taken yet."""

    def __init__(self, name: str, write: Callable[[Mapping[Key, list[int]]], None],
                 on_dropped: Callable[[int], None] = lambda requests: None,
                 bound: int = MAX_PENDING):
        """:param write: writes every row given, all or nothing (raises when it cannot).
        :param on_dropped: called with the requests of rows dropped beyond ``bound``."""
        self.name = name
        self.write = write
        self.on_dropped = on_dropped
        self.bound = bound
        self.pending = Tally()
        self.failing = False

    def offer(self, tally: Tally) -> None:
        self.pending.add(tally)
        dropped = self.pending.drop_oldest(self.bound)
        if dropped:
            self.on_dropped(dropped)

    def deliver(self) -> bool:
        """Write what is pending; on failure keep it for the next try."""
        if not self.pending:
            return True
        try:
            self.write(self.pending.rows)
        except Exception as error:  # any failure of the destination: kept, tried again
            if not self.failing:
                log.warning("usage records not written to %s: %s (%d rows kept, tried "
                            "again at the next flush)", self.name, _first_line(error),
                            len(self.pending))
            self.failing = True
            return False
        if self.failing:
            log.warning("usage records written to %s again", self.name)
        self.failing = False
        self.pending = Tally()
        return True


class UsageRecorder:
    """One worker's tally and the outboxes it is flushed to."""

    def __init__(self, outboxes: list[Outbox], flush_seconds: float = 5.0,
                 clock: Callable[[], float] = time.time):
        self.outboxes = outboxes
        self.flush_seconds = flush_seconds
        self.clock = clock
        self.tally = Tally()
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        _RECORDERS.add(self)

    def record(self, entry: Mapping) -> None:
        """An access-log entry: counted when it names a service (the gateway's own
        endpoints and unrouted paths do not)."""
        service = entry.get("service")
        if service is None:
            return
        with self._lock:
            self.tally.count(entry.get("consumer") or ANONYMOUS, service, self.clock(),
                             entry["status"], entry.get("bytes_received") or 0,
                             entry.get("bytes_sent") or 0, entry.get("duration_ms") or 0.0)

    def flush(self) -> None:
        """Hand the tally to every outbox and have each write what it holds."""
        with self._flushing:  # one flush at a time (the thread, a stop)
            with self._lock:
                tally, self.tally = self.tally, Tally()
            for outbox in self.outboxes:
                if tally:
                    outbox.offer(tally)
                outbox.deliver()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, daemon=True,
                                            name="gateway-usage-flush")
            self._thread.start()

    def stop(self) -> None:
        """Stop flushing in the background, after one last flush."""
        self._stopped.set()
        self.flush()

    def _run(self) -> None:
        while not self._stopped.wait(self.flush_seconds):
            try:
                self.flush()
            except Exception:  # never the end of the thread: the next flush tries again
                log.exception("usage flush failed")


def flush_all() -> None:
    """Flush every recorder of the process (a stopping worker, ``atexit``)."""
    for recorder in list(_RECORDERS):
        try:
            recorder.flush()
        except Exception:
            log.exception("usage flush at exit failed")


def _first_line(error: BaseException) -> str:
    original = getattr(error, "orig", None) or error
    return (str(original).strip().splitlines() or [type(original).__name__])[0]


atexit.register(flush_all)
