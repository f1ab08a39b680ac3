"""``gateway.testing``: test a gateway.yaml with pytest (the ``gateway`` pytest plugin).

Public API, changed only with a note in CHANGELOG.md. This package imports the
gateway only when one of its fixtures is used.
"""

from .clock import MovedClock

__all__ = ["MovedClock"]
