"""The transport: how the gateway reaches a service, and nothing else does.

- :mod:`.upstream`: :class:`Upstream`, one per service (targets, failover, breakers).
- :mod:`.pools`: urllib3 pools that forward the request target byte for byte.
- :mod:`.body`: :class:`UpstreamBody`, the streamed answer, and its observers.
- :mod:`.errors`: :class:`UpstreamError`, what urllib3 failures become.
"""

from .body import READ_CHUNK, BodyObserver, UpstreamBody, when_sent
from .errors import UpstreamError
from .upstream import DEFAULT_POOL_SIZE, Exchange, Target, Upstream

__all__ = ["DEFAULT_POOL_SIZE", "READ_CHUNK", "BodyObserver", "Exchange", "Target", "Upstream",
           "UpstreamBody", "UpstreamError", "when_sent"]
