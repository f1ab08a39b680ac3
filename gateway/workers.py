"""The gunicorn worker the gateway runs in: gthread that takes only what it can start.

gunicorn's gthread worker accepts connections while it holds fewer than
``worker_connections``, idle keep-alive ones included. With a generous limit
(needed so idle keep-alive connections, which nginx keeps open to the
gateway, have room) one worker can accept a whole burst and queue it behind
its busy threads while a sibling sits idle. This worker accepts a new
connection only while one of its threads is free: a burst spreads over the
workers, and idle keep-alive connections still wait in the poller without
holding a thread (up to ``worker_connections`` in all).
"""

from __future__ import annotations

from gunicorn.workers.gthread import ThreadWorker


class GatewayThreadWorker(ThreadWorker):
    """``worker_class = "gateway.workers.GatewayThreadWorker"`` (gunicorn.conf.py)."""

    @property  # type: ignore[override]
    def worker_connections(self) -> int:
        """The ceiling gthread's loop compares ``nr_conns`` with, each turn.

        Below the configured ceiling, report room for exactly one more
        connection while a thread is free, and none while all are busy.
        """
        idle = len(self.keepalived_conns) + len(self.pending_conns)
        busy = self.nr_conns - idle
        if busy >= self.cfg.threads:
            return self.nr_conns
        return min(self.cfg.worker_connections, self.nr_conns + 1)

    @worker_connections.setter
    def worker_connections(self, value: int) -> None:
        pass  # set by ThreadWorker.__init__; the property above decides
