"""The headers reference: what the gateway reads from clients, writes upstream, writes back.

The hop-by-hop and rebuilt sets come from ``gateway/routing/headers.py``
itself. :data:`HEADERS` says what each header the gateway names does; every
header-like string literal in ``gateway/`` (``X-…``, ``RateLimit-…``,
``Access-Control-…`` and the standard ones the gateway acts on) must have an
entry, or the page is :class:`~docsgen.Undocumented`.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from . import GATEWAY, Undocumented, source_nodes

#: A string literal in gateway/ that names a header the gateway reads or writes.
HEADER_LITERAL = re.compile(
    r"^(x-[a-z-]+|ratelimit-[a-z]+|access-control-[a-z-]+|retry-after|www-authenticate|"
    r"traceparent|tracestate|authorization|origin|allow|vary|cache-control|age)$", re.I)

CLIENT_IN, UPSTREAM_OUT, CLIENT_OUT = "read from clients", "sent to upstreams", "sent to clients"
NGINX = "between nginx and the gateway (offload)"

#: name: ((direction, what), ...)
HEADERS: dict[str, tuple[tuple[str, str], ...]] = {
    "X-Gateway-Allowed": ((NGINX, "the decision on an offloaded request: it may go "
                                  "upstream"),),
    "X-Gateway-Up-": ((NGINX, "`X-Gateway-Up-<name>`: a header nginx sets on the request "
                              "upstream (`X-Request-ID`, `X-Consumer`, the claims')"),),
    "X-Gateway-Down-": ((NGINX, "`X-Gateway-Down-<name>`: a header nginx adds to the answer "
                                "(`RateLimit-*`, `X-Quota-*`, CORS, `X-Request-ID`)"),),
    "X-Gateway-Answer": ((NGINX, "the gateway's whole answer to a request it did not let "
                                "through, which nginx has replayed"),),
    "X-Gateway-Log": ((NGINX, "what the decision knows of the request (id, service, consumer, "
                             "key id, issuer, span, decision number), as JSON: nginx writes it "
                             "into the request's log line for the gateway's log socket"),),
    "X-API-Key": ((CLIENT_IN, "the API key on `auth: api_key` routes; never sent upstream "
                              "nor logged"),),
    "Authorization": ((CLIENT_IN, "`Bearer <token>` on `auth: jwt` routes; sent upstream "
                                  "only with `forward_token: true`; never logged"),),
    "X-Request-ID": ((CLIENT_IN, "kept when well formed (up to 128 of `[A-Za-z0-9._-]`), "
                                 "otherwise replaced by one the gateway makes"),
                     (UPSTREAM_OUT, "the request's id, also in the access log and error "
                                    "bodies"),
                     (CLIENT_OUT, "on every answer, the gateway's errors included")),
    "X-Forwarded-For": ((CLIENT_IN, "believed only for the last `trusted_proxies` hops"),
                        (UPSTREAM_OUT, "the client's address appended (a client's own "
                                       "value is replaced unless a trusted proxy sent it)")),
    "X-Forwarded-Proto": ((CLIENT_IN, "believed from a trusted proxy"),
                          (UPSTREAM_OUT, "`http` or `https`, as the client connected")),
    "X-Forwarded-Host": ((CLIENT_IN, "believed from a trusted proxy"),
                         (UPSTREAM_OUT, "the `Host` the client asked for")),
    "X-Forwarded-Port": ((CLIENT_IN, "believed from a trusted proxy"),
                         (UPSTREAM_OUT, "the port the client connected to")),
    "X-Forwarded-Prefix": ((CLIENT_IN, "believed from a trusted proxy"),
                           (UPSTREAM_OUT, "the prefix removed by `strip_prefix`")),
    "X-Consumer": ((UPSTREAM_OUT, "the consumer's name (API key) or the token's subject; a "
                                  "client's own copy is dropped"),),
    "X-Canary": ((CLIENT_IN, "`always` or `never` forces a service's canary branch (the "
                             "name is `canary.header`); dropped before the upstream"),),
    "X-Gateway-Mirror": ((UPSTREAM_OUT, "`1` on the copies `mirror` sends to the shadow "
                                        "upstream"),),
    "X-Cache-Status": ((CLIENT_OUT, "`HIT`, `MISS` or `BYPASS` on routes with `cache`"),),
    "Age": ((CLIENT_OUT, "seconds a cached answer has been kept (`0` when fresh from the "
                         "upstream), on cached routes"),),
    "Cache-Control": ((CLIENT_IN, "on cached routes, `no-cache` (or `Pragma: no-cache`) "
                                  "fetches a fresh answer and keeps it, `no-store` fetches "
                                  "one and keeps nothing (both `BYPASS`)"),
                      (CLIENT_OUT, "the upstream's, passed through; its `no-store`, "
                                   "`private` and `max-age` decide what the cache keeps; "
                                   "`no-store` on the status page")),
    "Vary": ((CLIENT_OUT, "the upstream's, plus `Origin` on CORS routes; the cache keys on "
                          "the request headers it names, and never stores `Vary: *`"),),
    "RateLimit-Limit": ((CLIENT_OUT, "the quota that applies (IETF RateLimit headers), on "
                                     "routes with a quota"),),
    "RateLimit-Remaining": ((CLIENT_OUT, "hits left in the current window"),),
    "RateLimit-Reset": ((CLIENT_OUT, "seconds until the window resets"),),
    "X-Quota-Limit": ((CLIENT_OUT, "the consumer's allowance for the calendar period "
                                   "(its plan's or its own `quota`)"),),
    "X-Quota-Remaining": ((CLIENT_OUT, "what is left of it after this request (0 on "
                                       "`quota_exhausted`)"),),
    "X-Quota-Reset": ((CLIENT_OUT, "seconds until the period (month or day, UTC) ends"),),
    "Retry-After": ((CLIENT_OUT, "on 429 `rate_limited` and `quota_exhausted`, 503 `upstream_unavailable` and "
                                 "`identity_provider_unavailable`: seconds to wait"),),
    "WWW-Authenticate": ((CLIENT_OUT, "the RFC 6750 challenge on 401 and 403 token "
                                      "refusals"),),
    "Allow": ((CLIENT_OUT, "the accepted methods, on 405"),),
    "X-Gateway-Completed": ((CLIENT_OUT, "on aggregates: `true` when every call succeeded, "
                                         "`false` when `_errors` lists failures"),),
    "X-Accel-Buffering": ((CLIENT_OUT, "`no` on server-sent events and JSON lines, so nginx "
                                       "passes each event at once"),),
    "traceparent": ((CLIENT_IN, "an incoming W3C trace context is continued when `tracing` is "
                                "on (its sampling decision followed)"),
                    (UPSTREAM_OUT, "the upstream call's span; a client's own is replaced "
                                   "while tracing, passed through otherwise")),
    "tracestate": ((CLIENT_IN, "kept with `traceparent`"),
                   (UPSTREAM_OUT, "as `traceparent`")),
    "Origin": ((CLIENT_IN, "on CORS routes, checked against `cors.origins`: a preflight or "
                           "WebSocket handshake from another origin is 403"),),
    "Access-Control-Request-Method": ((CLIENT_IN, "a preflight's method, answered by the "
                                                  "gateway"),),
    "Access-Control-Request-Headers": ((CLIENT_IN, "a preflight's headers; allowed unless "
                                                   "`cors.headers` restricts them"),),
    "Access-Control-Allow-Origin": ((CLIENT_OUT, "the request's origin when allowed (`*` "
                                                 "with `origins: ['*']`)"),),
    "Access-Control-Allow-Methods": ((CLIENT_OUT, "on preflights: `cors.methods`, default "
                                                  "the route's"),),
    "Access-Control-Allow-Headers": ((CLIENT_OUT, "on preflights: `cors.headers`, default "
                                                  "what was asked"),),
    "Access-Control-Allow-Credentials": ((CLIENT_OUT, "`true` with `cors.credentials`"),),
    "Access-Control-Max-Age": ((CLIENT_OUT, "on preflights: `cors.max_age`"),),
    "Access-Control-Expose-Headers": ((CLIENT_OUT, "`cors.expose_headers` plus the gateway's "
                                                   "own: X-Request-ID, RateLimit-*, "
                                                   "Retry-After, X-Cache-Status"),),
}


def headers_in_source(root: Path = GATEWAY) -> set[str]:
    """Header names the gateway's code spells out, lower-cased."""
    return {node.value.lower() for _, node in source_nodes(root)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and HEADER_LITERAL.match(node.value)}


def render() -> str:
    """The headers reference, in Markdown."""
    from gateway.routing.headers import DROP_FROM_RESPONSE, HOP_BY_HOP, REBUILT_REQUEST_HEADERS

    known = {name.lower() for name in HEADERS}
    missing = sorted(headers_in_source() - known - REBUILT_REQUEST_HEADERS - HOP_BY_HOP)
    if missing:
        raise Undocumented(f"headers named in gateway/ without an entry in docsgen/headers.py: "
                           f"{missing}")
    lines = ["# Headers reference", "",
             "Every header the gateway itself reads or writes; every other header passes "
             "between client and upstream untouched, both ways, repeated ones included. "
             "Generated from `gateway/routing/headers.py` and checked against every header "
             "name the code spells out.", ""]
    for direction in (CLIENT_IN, UPSTREAM_OUT, CLIENT_OUT, NGINX):
        lines += [f"## {direction[0].upper()}{direction[1:]}", "",
                  "| header | what the gateway does |", "|---|---|"]
        lines += [f"| `{name}` | {what} |" for name, uses in HEADERS.items()
                  for way, what in uses if way == direction]
        lines.append("")
    lines += [
        "## Removed", "",
        "Hop-by-hop headers describe one connection, not the message (RFC 9110 §7.6.1): "
        "they are removed both ways, with any header the `Connection` header names. "
        "(A WebSocket handshake keeps `Upgrade` and `Connection: Upgrade`.)", "",
        ", ".join(f"`{h}`" for h in sorted(HOP_BY_HOP)), "",
        "A client's copies of the headers the gateway sets for the upstream are dropped "
        "(unless a trusted proxy sent the `X-Forwarded-*` ones):", "",
        ", ".join(f"`{h}`" for h in sorted(REBUILT_REQUEST_HEADERS)), "",
        "The upstream's copies of these are replaced by the server's own (as nginx does):",
        "", ", ".join(f"`{h}`" for h in sorted(DROP_FROM_RESPONSE - HOP_BY_HOP)), ""]
    return "\n".join(lines)
