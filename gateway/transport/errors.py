"""Upstream failures, as the client will see them.

Nothing outside the transport sees a urllib3 or requests exception: each
becomes an :class:`UpstreamError` (502 for refused/reset/TLS, 504 for timeouts)
whose ``kind`` labels logs and metrics.
"""

from __future__ import annotations

from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, SSLError
from urllib3.exceptions import TimeoutError as Urllib3TimeoutError

from ..errors import GatewayError


class UpstreamError(GatewayError):
    """The upstream could not be reached or did not answer in time.

    ``kind`` is one of ``connect``, ``timeout``, ``reset``, ``tls``, ``circuit_open``.
    """

    def __init__(self, status: int, code: str, message: str, kind: str, target: str,
                 headers: dict[str, str] | None = None):
        super().__init__(status, code, message, headers)
        self.kind = kind
        self.target = target


def before_sending(exc: Exception) -> bool:
    """The connection failed before any byte of the request went out."""
    return isinstance(exc, (NewConnectionError, ConnectTimeoutError))


def translate(exc: Exception, target: str) -> UpstreamError:
    """Map a urllib3 failure (or a handshake's socket error) to the status and code the
    client gets."""
    if isinstance(exc, NewConnectionError):
        return UpstreamError(502, "bad_gateway", "the upstream service refused the connection",
                             "connect", target)
    if isinstance(exc, (Urllib3TimeoutError, TimeoutError)):  # connect and read timeouts alike
        return UpstreamError(504, "gateway_timeout", "the upstream service did not answer in time",
                             "timeout", target)
    if isinstance(exc, SSLError):
        return UpstreamError(502, "bad_gateway", "the TLS handshake with the upstream failed",
                             "tls", target)
    return UpstreamError(502, "bad_gateway", "the upstream service closed the connection "
                         "without a valid response", "reset", target)
