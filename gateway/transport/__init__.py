"""The transport: how the gateway reaches a service, and nothing else does.

- :mod:`.upstream`: :class:`Upstream`, one per service (targets, failover, breakers).
- :mod:`.answer`: :class:`Answer`, what a service said, its body still to read.
- :mod:`.breaker`: one circuit breaker per target, its state in memory or Redis.
- :mod:`.pools`: urllib3 pools that forward the request target byte for byte.
- :mod:`.body`: :class:`UpstreamBody`, the streamed answer, and its observers.
- :mod:`.errors`: :class:`UpstreamError`, what urllib3 failures become.
- :mod:`.tunnel`: a WebSocket handshake upstream and the byte tunnel after it.
- :mod:`.frames`: where WebSocket frames end, and the gateway's own Close frame.
"""

from .answer import Answer
from .body import READ_CHUNK, BodyCopy, BodyObserver, UpstreamBody, is_stream, when_sent
from .errors import UpstreamError
from .upstream import DEFAULT_POOL_SIZE, NOT_SENT, CallHooks, Reach, Target, Upstream

__all__ = ["Answer", "DEFAULT_POOL_SIZE", "NOT_SENT", "READ_CHUNK", "BodyCopy", "BodyObserver",
           "CallHooks", "Reach",
           "Target", "Upstream", "UpstreamBody", "UpstreamError", "is_stream", "when_sent"]
