"""gunicorn's gevent worker, with two fixes for how a gateway is used.

**Connection storms.** With several workers gunicorn sets gevent's
``max_accept`` to 1: one ``accept()`` per pass of the event loop. A busy
worker's pass runs every ready request greenlet, so under load it accepts a
few dozen connections a second, and a burst (a deploy of the callers, a
mobile reconnect wave, a load balancer checking every replica) waits in the
listen queue past clients' timeouts (measured: 256 connections opened at
once left 60 queued after 2 s and 65 past a 5 s timeout). This worker
accepts up to :data:`ACCEPT_BATCH` per pass *while its loop is slow* (a 10 ms
timer fires more than :data:`SLOW_PASS` late): then its next chance to accept
is far away. While its loop is quick it accepts one per pass, as gunicorn
does, and that is what spreads connections over the workers: all of them
wake for the same socket, and the first awake would otherwise take a whole
burst (measured: 32 keep-alive connections opened at once all went to one of
two workers in 3 runs of 5, which then served at half the machine's rate).

**A stop while booting.** A worker told to stop before its app has loaded
(a stop or reload right after a start) ends at once: it has nothing in flight.

**A quiet stop.** Ctrl-C in a terminal sends SIGINT to the master and every
worker. gunicorn's gevent worker raises ``SystemExit`` from a greenlet, and
gevent prints it as a traceback from each worker. Here a worker's quick stop
(SIGINT, SIGQUIT) flushes its output and ends the process without one; the
master says the one line it always says.

Selected by gateway/serve/gunicorn_conf.py. Imported by the master: it
imports nothing of the gateway.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import gevent
from gevent.server import StreamServer
from gunicorn.workers import ggevent

from .. import lifecycle

#: Connections one worker accepts per pass of a slow loop (gevent's default is 100).
ACCEPT_BATCH = 64
#: A loop whose timer fires this many seconds late is slow: accept in batches.
SLOW_PASS = 0.005


class LoopLag:
    """How late the worker's event loop runs a repeating timer: roughly how long
    one pass of the loop takes at the moment."""

    INTERVAL = 0.01

    def __init__(self, loop, clock=time.monotonic):
        self.late = 0.0
        self._clock = clock
        self._due = clock() + self.INTERVAL
        self._timer = loop.timer(self.INTERVAL, self.INTERVAL)
        self._timer.ref = False  # never what keeps a stopping worker's loop alive
        self._timer.start(self.tick)

    def tick(self) -> None:
        now = self._clock()
        self.late = max(0.0, now - self._due)
        self._due = now + self.INTERVAL

    @property
    def accept_batch(self) -> int:
        """Connections to accept in this pass: one while the loop is quick (the
        other workers share a burst), a batch while it is slow."""
        return ACCEPT_BATCH if self.late > SLOW_PASS else 1


class BurstAcceptingServer(StreamServer):
    """A StreamServer that accepts in batches while its loop is slow; gunicorn cannot
    pin its ``max_accept`` to 1."""

    _lag: LoopLag | None = None
    #: this worker's servers, so that a stop can end their accepting at once
    started: list[BurstAcceptingServer] = []

    def start(self) -> None:
        super().start()
        BurstAcceptingServer.started.append(self)

    @property
    def max_accept(self) -> int:  # type: ignore[override]
        if self._lag is None:  # made on first use: in the worker, on its loop
            self._lag = LoopLag(self.loop)
        return self._lag.accept_batch

    @max_accept.setter
    def max_accept(self, value: int) -> None:
        pass  # gunicorn's `server.max_accept = 1` for several workers


def stop_while_booting(worker, quietly: bool = False) -> None:
    """End a worker told to stop before it has booted, at once: it has accepted nothing,
    and loading the rest of the app only to exit (seconds on a busy machine) would keep
    a stop or reload waiting. ``quietly``: a quick stop (Ctrl-C) says nothing."""
    if not quietly:
        worker.log.info("Worker stopped while booting (pid: %s)", os.getpid())
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(0)


class GatewayWorker(ggevent.GeventWorker):
    def run(self) -> None:
        # this worker's process only: gunicorn's run() builds its servers from
        # the module's StreamServer name
        ggevent.StreamServer = BurstAcceptingServer  # type: ignore[misc]
        # A TERM now goes through the event loop, so that it is handled at once: a
        # Python-level handler waits for the loop to run Python code, up to a second
        # in an idle worker, and a reload's old worker would accept meanwhile. (While
        # the app loads, the Python-level handler is the prompt one: no loop runs.)
        gevent.signal_handler(signal.SIGTERM, self.handle_exit, signal.SIGTERM, None)
        super().run()

    def handle_exit(self, sig, frame) -> None:
        if not self.booted:  # still loading the app: nothing in flight, nothing to wait for
            stop_while_booting(self)
        # a graceful stop: /readyz says so to whoever still holds a connection, and no
        # new connection is taken from now on (gunicorn's loop would notice within a
        # second; a reload's new workers are ready and accepting by now)
        lifecycle.mark_draining()
        for server in BurstAcceptingServer.started:
            server.stop_accepting()
        if self.alive:  # (said once: a second TERM changes nothing)
            self.log.info("Worker stopping (pid: %s): no new connection is accepted", self.pid)
        super().handle_exit(sig, frame)

    def handle_quit(self, sig, frame) -> None:
        if not self.booted:
            stop_while_booting(self, quietly=True)
        # a quick stop (Ctrl-C, SIGQUIT): out of the signal handler, as
        # gunicorn does, but ending the process without a SystemExit traceback
        # (and before run() notices anything and logs "Worker exiting")
        gevent.spawn(self._quit_now)

    def _quit_now(self) -> None:
        self.cfg.worker_int(self)
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()  # access log lines already written must not be lost
            except (OSError, ValueError):
                pass
        os._exit(0)
