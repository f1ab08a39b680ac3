"""Where this process is in its life: serving, or draining before it stops.

gunicorn's worker (gateway/serve/worker.py) marks the process draining when
it is told to stop gracefully (SIGTERM: a stop, a reload, a scale-down); from
then on ``/readyz`` answers 503, so a load balancer that still holds a
keep-alive connection to it sends its next requests elsewhere. Imported by
gunicorn's master too, so it imports nothing.
"""

from __future__ import annotations

_draining = False


def mark_draining() -> None:
    """This process has been told to stop: it finishes what it has and takes nothing new."""
    global _draining
    _draining = True


def draining() -> bool:
    return _draining
