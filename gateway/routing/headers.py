"""Which headers cross the gateway, in each direction.

Hop-by-hop headers (RFC 9110 §7.6.1) describe one connection, not the
message, so a proxy removes them, together with any header the ``Connection``
header names. Everything else passes untouched, repeated headers included.
"""

from __future__ import annotations

from collections.abc import Iterable

#: RFC 9110 §7.6.1, plus the non-standard ones clients still send.
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-connection", "proxy-authenticate",
    "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade",
})

#: Request headers the gateway sets itself for the upstream, so a client's
#: copy is dropped. ``Expect`` is answered by the WSGI server on our side.
REBUILT_REQUEST_HEADERS = frozenset({
    "host", "expect", "x-request-id", "x-forwarded-for", "x-forwarded-proto",
    "x-forwarded-host", "x-forwarded-port", "x-forwarded-prefix", "x-consumer",
})

DROP_FROM_REQUEST = HOP_BY_HOP | REBUILT_REQUEST_HEADERS

#: Response headers the WSGI server writes itself; passing the upstream's
#: copies would send them twice (nginx hides the same ones by default).
DROP_FROM_RESPONSE = HOP_BY_HOP | frozenset({"date", "server"})


def header_tokens(value: str | None) -> list[str]:
    """The comma-separated tokens of a header such as ``Connection`` or ``Vary``."""
    return [token.strip() for token in (value or "").split(",") if token.strip()]


def connection_listed(value: str | None) -> frozenset[str]:
    """Header names listed in a ``Connection`` header, lower-cased."""
    return frozenset(token.lower() for token in header_tokens(value))


def end_to_end(headers: Iterable[tuple[str, str]], drop: frozenset[str],
               connection: str | None) -> list[tuple[str, str]]:
    """The headers that are not in ``drop`` nor named by ``connection``."""
    if connection:
        drop = drop | connection_listed(connection)
    return [(k, v) for k, v in headers if k.lower() not in drop]
