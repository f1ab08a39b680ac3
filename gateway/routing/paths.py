"""The request target, exactly as the client sent it, and its safety check.

WSGI servers hand over ``PATH_INFO`` percent-decoded; a proxy must send the
bytes it received instead, so the raw target comes from ``RAW_URI`` (gunicorn,
werkzeug) or ``REQUEST_URI``. Routing uses the decoded path, and a path whose
decoded form could climb out of its prefix (``..``, ``.``, ``//``, ``\\``) is
refused before it reaches any service.
"""

from __future__ import annotations

from urllib.parse import quote, unquote, urlsplit

from ..errors import GatewayError


def raw_target(environ: dict) -> str:
    """``/path?query`` as received, never percent-decoded nor re-encoded."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if not raw:
        raw = quote(environ.get("PATH_INFO", "").encode("latin-1"), safe="/;=,:@!$&'()*+~")
        if environ.get("QUERY_STRING"):
            raw += "?" + environ["QUERY_STRING"]
    elif not raw.startswith("/"):
        # absolute-form (`GET http://host/path HTTP/1.1`): keep path and query only
        parts = urlsplit(raw)
        raw = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    # a fragment is the client's own business (RFC 9110 §4.2.4): it never goes upstream
    raw = raw.partition("#")[0]
    if not raw.isascii():
        # WSGI strings are latin-1; raw non-ASCII bytes cannot go on the wire as-is
        raw = quote(raw.encode("latin-1"), safe="".join(chr(c) for c in range(33, 127)))
    return raw


def check_path(decoded_path: str) -> None:
    """Refuse paths that normalise to somewhere else than they look.

    :raises GatewayError: 400 ``bad_path``.
    """
    path = decoded_path.replace("\\", "/")
    segments = path.split("/")
    # segments[0] is '' (paths start with '/'); a trailing '' is a trailing slash
    inner = segments[1:-1]
    if ("\x00" in path or any(seg in (".", "..") for seg in segments)
            or any(seg == "" for seg in inner)):
        raise GatewayError(400, "bad_path",
                           "the path contains '.', '..' or empty segments; send the "
                           "normalised path instead")


def prefix_segments(prefix: str, strip_prefix: bool) -> int:
    """How many leading segments of a request's path ``strip_prefix`` drops (0: none)."""
    return prefix.count("/") if strip_prefix and prefix != "/" else 0


def strip_segments(raw_path: str, count: int) -> str:
    """Drop the first ``count`` segments of a raw path (the service prefix)."""
    if count == 0:
        return raw_path
    rest = raw_path.split("/", count + 1)
    return "/" + rest[count + 1] if len(rest) > count + 1 else "/"


def service_path(environ: dict, count: int) -> str:
    """The path as the service sees it, percent-decoded (validation's operations are
    matched on it): the one rule the proxy applies to the raw path, by segments."""
    return unquote(strip_segments(raw_target(environ).partition("?")[0], count))
