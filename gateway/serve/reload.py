"""A reload that never leaves the gateway without workers ready to serve.

gunicorn's own reload forks the new workers and, in the same breath, sends
the old ones TERM: the old stop accepting at once while the new are still
importing the app (a second or two on a quiet machine, far more on a busy
one), and every request waits in the listen queue meanwhile (measured: 20 s
on a loaded machine). Here the old workers go on serving until each new
worker has loaded the app and says so (a file named by its pid, written from
``post_worker_init``); only then are the old ones stopped.

Imported by gunicorn's master: it imports nothing of the gateway's own.
"""

from __future__ import annotations

import os
import re
import time

#: How long the master waits for new workers to be ready before it stops the
#: old ones all the same (a worker that never gets ready is gunicorn's to judge).
READY_WAIT = 120.0


def ready_file(directory: str, pid: int) -> str:
    return os.path.join(directory, f"ready-{pid}")


def mark_ready(path: str) -> None:
    """In a worker whose app has loaded: tell the master it can serve."""
    try:
        with open(path, "w"):
            pass
    except OSError:
        pass  # the master then waits its READY_WAIT, no longer


def keep_old_workers_until_ready(server, directory: str, clock=time.monotonic,
                                 sleep=time.sleep) -> None:
    """Make ``server.manage_workers`` stop excess (old) workers only once every newer
    worker is ready, reaping meanwhile (a new worker that dies is not waited for)."""
    manage = server.manage_workers

    def manage_when_ready() -> None:
        if len(server.WORKERS) > server.num_workers:
            wait_until_ready(server, directory, clock, sleep)
        manage()

    server.manage_workers = manage_when_ready


def wait_until_ready(server, directory: str, clock=time.monotonic, sleep=time.sleep) -> bool:
    """Wait until the ``num_workers`` youngest workers have marked themselves ready.

    :returns: whether they did within :data:`READY_WAIT`.
    """
    deadline = clock() + READY_WAIT
    while True:
        youngest = sorted(server.WORKERS.items(), key=lambda w: w[1].age)[-server.num_workers:]
        if all(os.path.exists(ready_file(directory, pid)) for pid, _ in youngest):
            return True
        if clock() >= deadline:
            server.log.warning("new workers not ready after %d s: stopping the old ones "
                               "all the same", READY_WAIT)
            return False
        server.reap_workers()
        sleep(0.02)


def forget(directory: str, pid: int) -> None:
    """A worker has exited: its ready file goes (pids are reused)."""
    try:
        os.remove(ready_file(directory, pid))
    except OSError:
        pass


def config_summary(check_output: str) -> str:
    """``1 service, 2 aggregates`` from check's last line, ``<file>: OK, 1 service(s), 2
    aggregate(s)``: the reload's log line counts in words a person would write."""
    last = (check_output.strip().splitlines() or [""])[-1]
    counted = last.partition(": OK, ")[2]
    return re.sub(r"\b(\d+) (\w+)\(s\)",
                  lambda m: f"{m[1]} {m[2]}{'' if m[1] == '1' else 's'}", counted) or "valid"
