"""``upstreams``: a fake upstream per service, each a real HTTP server on loopback.

The gateway under test proxies to them over its real transport (pools, retries,
breaker, streaming), so what a test sees is what production does. A fake
answers what :meth:`FakeUpstream.respond` told it (the latest matching rule
wins), else 200 with a JSON echo of what arrived; :meth:`~FakeUpstream.fail`
answers the next requests with an error first; :meth:`~FakeUpstream.down`
refuses connections until :meth:`~FakeUpstream.up` opens the same address again.
Every request received is kept in :attr:`~FakeUpstream.requests` (the gateway's
health probes are answered by the rules, else 200, and left out).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from werkzeug.datastructures import Headers
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wsgi import get_input_stream

#: what the gateway's health probes send (gateway/transport/health.py)
PROBE_AGENT = "gateway-health-check"
_arrival = itertools.count()


@dataclass
class FakeRequest:
    """A request as a fake upstream received it."""

    method: str
    #: as received (after the gateway's ``strip_prefix``), without the query
    path: str
    query: dict[str, list[str]]
    headers: Headers
    body: bytes
    #: the body parsed as JSON, None when it is not JSON
    json: Any
    order: int = field(default_factory=lambda: next(_arrival), repr=False)

    def describe(self) -> str:
        """One line: method, path, query and headers (as assertion messages list it)."""
        query = "&".join(f"{k}={v}" for k, values in self.query.items() for v in values)
        headers = ", ".join(f"{k}: {v}" for k, v in self.headers.items())
        return f"{self.method} {self.path}{'?' + query if query else ''}  [{headers}]"


@dataclass
class _Rule:
    method: str
    path: str
    status: int
    body: bytes
    headers: list[tuple[str, str]]
    delay: float

    def matches(self, method: str, path: str) -> bool:
        return self.method in (method, "*") and _path_matches(self.path, path)


def _path_matches(pattern: str, path: str) -> bool:
    """``/orders/*`` matches any remainder; anything else, the path exactly."""
    if pattern.endswith("*"):
        return path.startswith(pattern[:-1])
    return path == pattern


class _Failures:
    """The next ``left`` requests are answered ``status`` (shared by a service's targets)."""

    def __init__(self) -> None:
        self.left, self.status = 0, 503
        self.lock = threading.Lock()

    def take(self) -> int | None:
        with self.lock:
            if self.left <= 0:
                return None
            self.left -= 1
            return self.status


class LoopbackServer:
    """Any WSGI app served over real HTTP on ``127.0.0.1``, in background threads: what a
    fake upstream runs on (and any upstream a test writes itself)."""

    def __init__(self, app, port: int = 0):
        """:param port: 0 for a free one."""
        self.app = app
        self.port = port
        self._server: BaseWSGIServer | None = None
        self.up()

    @property
    def url(self) -> str:
        """Its base URL, ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> None:
        """Listen (again, on the same port after :meth:`down`)."""
        if self._server is not None:
            return
        self._server = make_server("127.0.0.1", self.port, self.app, threaded=True)
        self.port = self._server.server_port
        # a short poll: down() and the test's end wait for the loop to notice, not 0.5 s
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                         daemon=True, name=f"loopback-{self.port}").start()

    def down(self) -> None:
        """Stop listening: connections are refused until :meth:`up`."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def stop(self) -> None:
        """Stop serving for good."""
        self.down()


class FakeUpstream:
    """One target: a WSGI app served on ``127.0.0.1`` at a port of its own."""

    def __init__(self, name: str, failures: _Failures | None = None):
        self.name = name
        self.requests: list[FakeRequest] = []
        self._rules: list[_Rule] = []
        self._failures = failures or _Failures()
        self._lock = threading.Lock()
        self.server = LoopbackServer(self)

    @property
    def port(self) -> int:
        """Its port on ``127.0.0.1`` (the same after :meth:`down` and :meth:`up`)."""
        return self.server.port

    @property
    def url(self) -> str:
        """Its base URL, ``http://127.0.0.1:PORT`` (the gateway under test proxies there)."""
        return self.server.url

    # -- what it answers

    def respond(self, method: str, path: str, status: int = 200, json: Any = None,
                body: bytes | str | None = None, headers: Mapping[str, str] | None = None,
                delay: float = 0) -> None:
        """Answer ``method path`` (``*`` at the end: any remainder; method ``*``: any)
        with ``status`` and a JSON or raw body; the latest matching rule wins."""
        content, extra = _body(json, body)
        rule = _Rule(method.upper(), path, status, content,
                     [*extra, *(headers or {}).items()], delay)
        with self._lock:
            self._rules.append(rule)

    def fail(self, times: int, status: int = 503) -> None:
        """Answer the next ``times`` requests ``status``, before any rule."""
        with self._failures.lock:
            self._failures.left, self._failures.status = times, status

    def down(self) -> None:
        """Refuse connections (the port is closed) until :meth:`up`."""
        self.server.down()

    def up(self) -> None:
        """Listen again, on the same port (rules kept)."""
        self.server.up()

    def reset(self) -> None:
        """Forget the rules, the failures to come and the requests received."""
        with self._lock:
            self._rules.clear()
            self.requests.clear()
        with self._failures.lock:
            self._failures.left = 0

    def close(self) -> None:
        """Stop serving (the plugin does at the test's end)."""
        self.down()

    def forget_requests(self) -> None:
        """Forget the requests received, keep the rules."""
        with self._lock:
            self.requests.clear()

    # -- what it received

    def assert_called(self, method: str, path: str, times: int = 1,
                      headers: Mapping[str, str] | None = None) -> None:
        """Exactly ``times`` requests of ``method`` on ``path`` (query ignored, ``*`` as in
        :meth:`respond`) with at least these headers; the AssertionError lists every
        request received."""
        _assert_called(self.name, self.requests, method, path, times, headers)

    # -- the WSGI app

    def __call__(self, environ, start_response):
        body = get_input_stream(environ).read()  # (bounded by Content-Length, or chunked)
        headers = Headers([(key[5:].replace("_", "-").title(), value)
                           for key, value in environ.items() if key.startswith("HTTP_")])
        for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(key):
                headers[key.replace("_", "-").title()] = environ[key]
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO") or "/"
        if headers.get("User-Agent") == PROBE_AGENT:
            # a health probe: answered by the rules (a test makes a target unhealthy with
            # respond("GET", "/healthz", status=503)), else 200; never recorded or failed
            with self._lock:
                rule = next((r for r in reversed(self._rules) if r.matches(method, path)),
                            None)
            if rule is not None:
                return _answer(start_response, rule.status, rule.body, rule.headers)
            return _answer(start_response, 200, b"ok", [("Content-Type", "text/plain")])
        request = FakeRequest(method, path, parse_qs(environ.get("QUERY_STRING", ""),
                                                     keep_blank_values=True),
                              headers, body, _parsed(body))
        with self._lock:
            self.requests.append(request)
            rule = next((r for r in reversed(self._rules) if r.matches(method, path)), None)
        failing = self._failures.take()
        if failing is not None:
            return _answer(start_response, failing, json.dumps(
                {"error": "fake failure", "status": failing}).encode(),
                [("Content-Type", "application/json")])
        if rule is not None:
            if rule.delay:
                time.sleep(rule.delay)
            return _answer(start_response, rule.status, rule.body, rule.headers)
        echo = {"method": method, "path": path, "query": request.query,
                "headers": dict(headers.items()), "json": request.json}
        return _answer(start_response, 200, json.dumps(echo).encode(),
                       [("Content-Type", "application/json")])


class FakeService:
    """A service's fakes: one per target, and the canary's and the mirror's when it has them.
    Acting on the service acts on every target; :attr:`requests` are all of theirs."""

    def __init__(self, name: str, targets: int):
        self.name = name
        self._failures = _Failures()
        self.targets = [FakeUpstream(f"{name}[{i}]", self._failures) for i in range(targets)]
        self.canary: FakeService | None = None
        self.mirror: FakeUpstream | None = None

    @property
    def url(self) -> str:
        """The first target's base URL."""
        return self.targets[0].url

    @property
    def requests(self) -> list[FakeRequest]:
        """Every target's requests, in the order they arrived."""
        return sorted((r for t in self.targets for r in t.requests), key=lambda r: r.order)

    def respond(self, *args, **kwargs) -> None:
        """:meth:`FakeUpstream.respond` on every target."""
        for target in self.targets:
            target.respond(*args, **kwargs)

    def fail(self, times: int, status: int = 503) -> None:
        """Answer the service's next ``times`` requests ``status``, whichever target
        takes them."""
        self.targets[0].fail(times, status)  # one budget for every target

    def down(self) -> None:
        """Every target refuses connections."""
        for target in self.targets:
            target.down()

    def up(self) -> None:
        """Every target listens again, on its own port."""
        for target in self.targets:
            target.up()

    def reset(self) -> None:
        """:meth:`FakeUpstream.reset` on every target."""
        for target in self.targets:
            target.reset()

    def assert_called(self, method: str, path: str, times: int = 1,
                      headers: Mapping[str, str] | None = None) -> None:
        """:meth:`FakeUpstream.assert_called`, counting every target's requests."""
        _assert_called(self.name, self.requests, method, path, times, headers)

    def close(self) -> None:
        """Stop every fake of the service (the plugin does at the test's end)."""
        for fake in self._all():
            fake.close()

    def forget_requests(self) -> None:
        """Forget every fake's requests, keep the rules."""
        for fake in self._all():
            fake.forget_requests()

    def _all(self) -> Iterable[FakeUpstream]:
        yield from self.targets
        if self.canary is not None:
            yield from self.canary.targets
        if self.mirror is not None:
            yield self.mirror


def _assert_called(name: str, received: list[FakeRequest], method: str, path: str,
                   times: int, headers: Mapping[str, str] | None) -> None:
    wanted = {k.lower(): v for k, v in (headers or {}).items()}
    found = [r for r in received if r.method == method.upper() and _path_matches(path, r.path)
             and all(r.headers.get(k) == v for k, v in wanted.items())]
    if len(found) != times:
        listed = "\n".join(f"  {r.describe()}" for r in received) or "  (none)"
        with_headers = f" with headers {dict(headers)}" if headers else ""
        raise AssertionError(f"upstream {name!r}: expected {times} {method.upper()} {path}"
                             f"{with_headers}, got {len(found)}; it received:\n{listed}")


def _body(data: Any, body: bytes | str | None) -> tuple[bytes, list[tuple[str, str]]]:
    if data is not None:
        return json.dumps(data).encode(), [("Content-Type", "application/json")]
    if body is None:
        return b"", []
    return (body.encode() if isinstance(body, str) else body), []


def _parsed(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def _answer(start_response, status: int, body: bytes, headers: list[tuple[str, str]]):
    from http import HTTPStatus

    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Status"
    start_response(f"{status} {reason}", [*headers, ("Content-Length", str(len(body)))])
    return [body]
