"""gunicorn's gevent worker, with two fixes for how a gateway is used.

**Connection storms.** With several workers gunicorn sets gevent's
``max_accept`` to 1: one ``accept()`` per pass of the event loop. A busy
worker's pass runs every ready request greenlet, so under load it accepts a
few dozen connections a second, and a burst (a deploy of the callers, a
mobile reconnect wave, a load balancer checking every replica) waits in the
listen queue past clients' timeouts (measured: 256 connections opened at
once left 60 queued after 2 s and 65 past a 5 s timeout). This worker
accepts up to :data:`ACCEPT_BATCH` per pass, as gevent does by default; the
other workers still wake for the same socket, so a burst is shared.

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
import sys

import gevent
from gevent.server import StreamServer
from gunicorn.workers import ggevent

#: Connections one worker accepts per pass of its event loop (gevent's default is 100).
ACCEPT_BATCH = 64


class BurstAcceptingServer(StreamServer):
    """A StreamServer whose ``max_accept`` gunicorn cannot lower to 1."""

    @property
    def max_accept(self) -> int:  # type: ignore[override]
        return ACCEPT_BATCH

    @max_accept.setter
    def max_accept(self, value: int) -> None:
        pass  # gunicorn's `server.max_accept = 1` for several workers


class GatewayWorker(ggevent.GeventWorker):
    def run(self) -> None:
        # this worker's process only: gunicorn's run() builds its servers from
        # the module's StreamServer name
        ggevent.StreamServer = BurstAcceptingServer  # type: ignore[misc]
        super().run()

    def handle_quit(self, sig, frame) -> None:
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
