"""nginx's log lines for offloaded requests: what each says, and which never came.

nginx sends one syslog datagram per offloaded request when it ends, in the format
``gateway nginx`` wrote (gateway/offload/nginx.py, ``LOGGED``): the decision's own
account of the request (``gateway``: id, service, consumer, key id, issuer, span,
sequence number; gateway/offload/decisions.py) and what only nginx saw (status,
time, bytes, the upstream). :func:`entry` turns it into the access-log entry the
gateway would have written had it proxied the request (gateway/telemetry/accesslog.py),
with the same fields; ``bytes_received`` is the body's announced length, and
``upstream`` names host:port.

nginx drops a line it cannot send (the socket's queue full: ``net.unix.max_dgram_qlen``).
:class:`LostLines` counts those from the decisions' numbers: each worker numbers its
decisions (``<pid>.<n>``) and sends a heartbeat with the last number it gave; a
number below the last one known whose line has not come within ``after`` seconds is
counted lost. A WebSocket's or an event stream's decision carries no number (its line
comes when it ends, hours later perhaps): such lines are not counted when lost.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import unquote

#: how long a line may come after a later decision's (a long download's line comes
#: late): ``GATEWAY_OFFLOAD_LOST_AFTER``
DEFAULT_LOST_AFTER = 300.0
#: nginx's errors, as the gateway's access log names the upstream failure
_UPSTREAM_ERRORS = {"connect", "timeout"}


class NotALine(ValueError):
    """A datagram that is neither nginx's line nor a worker's heartbeat."""


def parse(datagram: bytes) -> dict:
    """The JSON document in a syslog datagram (``<190>Dec  5 12:00:00 gateway: {...}``)
    or a worker's heartbeat (bare JSON)."""
    start = datagram.find(b"{")
    if start < 0:
        raise NotALine("no JSON document")
    try:
        document = json.loads(datagram[start:])
    except ValueError as error:
        raise NotALine(str(error)) from None
    if not isinstance(document, dict):
        raise NotALine("not a JSON object")
    return document


def decision(line: dict) -> dict:
    """The decision's account in nginx's line (empty when nginx answered without asking:
    a body over the limit, the gateway down)."""
    text = line.get("gateway") or ""
    if not text:
        return {}
    try:
        told = json.loads(text)
    except ValueError:
        return {}
    return told if isinstance(told, dict) else {}


def entry(line: dict, told: dict) -> dict:
    """The access-log entry for nginx's ``line`` (``told``: :func:`decision`)."""
    status = _int(line.get("status"))
    duration = _float(line.get("request_time")) or 0.0
    ended = _float(line.get("msec")) or 0.0
    header_time = _last_float(line.get("upstream_header_time"))
    answered_by_gateway = bool(line.get("answered")) or not told.get("id") and not header_time
    started = ended - duration
    span = told.get("span")
    error = line.get("error") or None
    made = {
        # when the answer began, as the gateway's line says it
        "time": datetime.fromtimestamp(started + (header_time or 0.0), UTC)
        .isoformat(timespec="milliseconds"),
        "request_id": told.get("id") or line.get("nginx_request_id"),
        "method": line.get("method"),
        "path": unquote((line.get("uri") or "").partition("?")[0]),
        "status": status,
        "duration_ms": round(duration * 1000.0, 2),
        "service": told.get("service") or line.get("service"),
        "consumer": told.get("consumer"),
        "issuer": told.get("issuer"),
        "upstream": None if answered_by_gateway else _last(line.get("upstream")),
        "upstream_ms": None if header_time is None or answered_by_gateway
        else round(header_time * 1000.0, 2),
        "client_ip": line.get("client"),
        "bytes_sent": _int(line.get("body_bytes_sent")),
        "cache": None,
        "trace_id": span[0] if span and span[4] else None,
    }
    if told.get("key_id") is not None:
        made["key_id"] = told["key_id"]
    if error in _UPSTREAM_ERRORS:
        made["upstream_error"] = error
    made["bytes_received"] = _int(line.get("content_length"))
    return made


class LostLines:
    """Which decided requests' lines never came: see the module's docstring."""

    def __init__(self, after: float = DEFAULT_LOST_AFTER):
        self.after = after
        #: per worker: the last number known to be given
        self.last: dict[int, int] = {}
        #: per worker: number -> when it was known to be missing
        self.missing: dict[int, dict[int, float]] = {}

    def logged(self, sequence: str, now: float) -> None:
        """A line came for the decision numbered ``sequence`` (``<pid>.<n>``)."""
        try:
            pid_text, _, number_text = sequence.partition(".")
            pid, number = int(pid_text), int(number_text)
        except (ValueError, AttributeError):
            return
        if pid not in self.last:  # (see decided)
            self.last[pid] = number
            return
        if number <= self.last[pid]:
            self.missing.get(pid, {}).pop(number, None)
            return
        self.decided(pid, number - 1, now)
        self.last[pid] = number

    def decided(self, pid: int, last: int, now: float) -> None:
        """Worker ``pid`` has given numbers up to ``last`` (its heartbeat).

        A worker first heard of now (this reader has just started: a reload, a restart)
        counts from here: what it decided before was this reader's predecessor's to
        count."""
        if pid not in self.last:
            self.last[pid] = last
            return
        known = self.last[pid]
        if last <= known:
            return
        missing = self.missing.setdefault(pid, {})
        for number in range(known + 1, last + 1):
            missing[number] = now
        self.last[pid] = last

    def expired(self, now: float) -> int:
        """How many more lines are now counted lost (each counted once)."""
        lost = 0
        for pid in list(self.missing):
            missing = self.missing[pid]
            for number, since in list(missing.items()):  # in the order they went missing
                if now - since < self.after:
                    break
                del missing[number]
                lost += 1
            if not missing:
                del self.missing[pid]
        return lost


def _int(text) -> int:
    try:
        return int(text)
    except (TypeError, ValueError):
        return 0


def _float(text) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _last(text: str | None) -> str | None:
    """The last of nginx's list (``a:80, b:80`` after a failover; `` : `` across a
    redirect)."""
    if not text:
        return None
    return text.replace(" : ", ", ").split(", ")[-1].strip() or None


def _last_float(text: str | None) -> float | None:
    last = _last(text)
    return _float(last) if last not in (None, "-") else None
