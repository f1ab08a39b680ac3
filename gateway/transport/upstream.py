"""One service's targets: pools, round-robin, failover, breakers, timeouts.

One :class:`Upstream` per service owns a ``requests.Session`` whose
:class:`~.pools.ProxyAdapter` holds one urllib3 pool per target. Every call
to the service, whether the proxy forwarding a request (:meth:`Upstream.send`)
or a hand-written blueprint asking for JSON (:meth:`Upstream.call`), goes
through the same :meth:`Upstream.send`: pick a target whose circuit is
closed, ``urlopen`` on its pool, fail over where that is safe, and tell the
request's :class:`CallHooks` what happened.

Per request the gateway drives the pool's ``urlopen`` directly: requests'
per-call pipeline (cookie jar, URL re-parsing, hooks, content decoding) costs
more than it gives a proxy, and it would re-encode the path and decompress
bodies, which a proxy must never do. :meth:`Upstream.call` uses requests to
prepare the request and build the :class:`requests.Response`, nothing more.
"""

from __future__ import annotations

import http.client
import itertools
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from urllib3 import HTTPConnectionPool
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.response import BaseHTTPResponse
from urllib3.util import SKIP_HEADER, Timeout

from ..config import ServiceConfig
from ..config.health import HealthCheckConfig
from ..config.tls import TlsConfig
from .answer import Answer
from .breaker import CircuitBreaker
from .errors import UpstreamError, before_sending, translate
from .pools import ProxyAdapter

#: Connections kept per target and worker when GATEWAY_CONNECTIONS does not
#: say (it does under gunicorn): a pool as large as the requests a worker keeps
#: in flight never discards connections.
DEFAULT_POOL_SIZE = 1000
#: How long a target that refused or timed out a connection is passed over
#: while others are healthy (nginx's ``fail_timeout`` default).
FAIL_TIMEOUT = 10.0
#: A header value that keeps the transport from sending a default of its own
#: (``User-Agent``, ``Accept-Encoding``) the client never sent.
NOT_SENT = SKIP_HEADER
#: Methods safe to send twice (RFC 9110 §9.2.2): only these are retried.
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})
#: What a call can fail with: urllib3's errors, and a handshake's own socket and parser
TRANSPORT_ERRORS = (Urllib3Error, OSError, http.client.HTTPException)

R = TypeVar("R")


class CallHooks:
    """What every upstream call of a request carries and reports.

    The default carries and reports nothing; the gateway's (in
    gateway/state.py) adds ``X-Request-ID`` and ``X-Consumer`` and writes the
    target, time and failure onto the request's state.
    """

    def headers(self) -> dict[str, str]:
        return {}

    def record(self, target: str, started: float, ended: float, error: str | None) -> None:
        """A call ended: its target, when it began and ended (``time.perf_counter()``),
        and the kind of its failure."""

    def attempt(self, method: str, target: str, number: int, breaker: str,
                headers: dict[str, str]) -> Callable[[int | None, str | None], None]:
        """One attempt on one target is about to be sent; may add to ``headers``
        (a trace's ``traceparent``). Returns ``done(status, error_kind)``."""
        return _attempt_done


def _attempt_done(status: int | None, error: str | None) -> None:
    pass


@dataclass(frozen=True)
class Reach:
    """What it takes to reach a service, and all an :class:`Upstream` needs: its name
    (for messages), target URLs, timeouts, retries, TLS and active health check."""

    name: str
    urls: tuple[str, ...]
    connect_timeout: float
    read_timeout: float
    retries: int = 0
    tls: TlsConfig | None = None
    health_check: HealthCheckConfig | None = None

    @classmethod
    def of(cls, service: ServiceConfig, urls: Iterable[str] | None = None) -> Reach:
        """A service's reach; ``urls``: other targets with its settings (a canary's)."""
        return cls(service.name, tuple(service.upstream if urls is None else urls),
                   service.timeout.connect, service.timeout.read, service.retries,
                   service.tls, service.health_check)


@dataclass(eq=False)
class Target:
    """One upstream base URL and its connection pool."""

    url: str
    pool: HTTPConnectionPool
    base_path: str
    host_header: str
    failed_until: float = field(default=0.0)
    #: the target's breaker when the service has ``circuit_breaker``
    breaker: CircuitBreaker | None = None
    #: False while active health checks have it out of rotation (transport/health.py)
    probe_healthy: bool = True

    def mark_failed(self) -> None:
        self.failed_until = time.monotonic() + FAIL_TIMEOUT

    @property
    def healthy(self) -> bool:
        return self.failed_until <= time.monotonic()


class Upstream:
    """A service's targets, balanced round-robin, with retries across them."""

    def __init__(self, reach: Reach | ServiceConfig, pool_size: int = DEFAULT_POOL_SIZE,
                 breaker_factory: Callable[[str], CircuitBreaker] | None = None,
                 hooks: CallHooks | None = None):
        """
        :param reach: how to reach the service (a ``ServiceConfig`` is read as its
            :meth:`Reach.of`).
        :param breaker_factory: ``f(target_url) -> CircuitBreaker``, when the
            service has ``circuit_breaker`` configured.
        :param hooks: what each call carries and reports (request id, timings).
        """
        self.reach = reach = reach if isinstance(reach, Reach) else Reach.of(reach)
        self.hooks = hooks or CallHooks()
        self.session = requests.Session()
        self.adapter = ProxyAdapter(pool_connections=len(reach.urls) or 1,
                                    pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", self.adapter)
        self.session.mount("https://", self.adapter)
        self.timeout = Timeout(connect=reach.connect_timeout, read=reach.read_timeout)
        self.targets = [self._target(url) for url in reach.urls]
        if breaker_factory is not None:
            for target in self.targets:
                target.breaker = breaker_factory(target.url)
        self._turn = itertools.count()

    def _target(self, url: str) -> Target:
        parts = urlsplit(url)
        tls = self.reach.tls
        if parts.scheme == "https" and tls is not None:
            # the service's own CAs, client certificate and name to verify
            pool = self.adapter.poolmanager.connection_from_host(
                parts.hostname, parts.port or 443, "https", pool_kwargs=tls.pool_options())
        else:
            # the Session's own TLS settings (certifi bundle, verify) pick the pool
            prepared = requests.Request("GET", url).prepare()
            pool = self.adapter.get_connection_with_tls_context(
                prepared, verify=self.session.verify, cert=self.session.cert)
        return Target(url=url, pool=pool,  # type: ignore[arg-type]
                      base_path=parts.path.rstrip("/"), host_header=parts.netloc)

    def pick(self, exclude: Iterable[Target] = ()) -> tuple[Target, bool]:
        """The next target in turn, passing over ones that just failed or whose
        circuit is open.

        :returns: the target, and whether its breaker wants the outcome written back.
        :raises UpstreamError: 503 ``upstream_unavailable`` when every circuit is open.
        """
        start = next(self._turn)
        count = len(self.targets)
        if count == 1 and self.targets[0].breaker is None:
            return self.targets[0], False
        order = [self.targets[(start + i) % count] for i in range(count)]
        # targets the health checks took out are passed over, unless every one is out
        # (a probe can be wrong: the request then tries them anyway)
        order = [t for t in order if t.probe_healthy] or order
        candidates = [t for t in order if t not in exclude] or order
        # healthy targets first; ones that just refused a connection only as a last resort
        candidates.sort(key=lambda t: not t.healthy)
        wait = None
        for target in candidates:
            if target.breaker is None:
                return target, False
            # allow() may claim the one half-open probe: ask only the target we would use
            blocked, dirty = target.breaker.allow()
            if not blocked:
                return target, dirty
            wait = blocked if wait is None else min(wait, blocked)
        retry_after = str(max(1, math.ceil(wait or 1)))
        raise UpstreamError(503, "upstream_unavailable",
                            f"the {self.reach.name} service is failing; its circuit is open",
                            "circuit_open", "", headers={"Retry-After": retry_after})

    def send(self, method: str, target_path: str, headers: dict[str, str],
             body: Any = None, chunked: bool = False, can_retry: bool = True) -> Answer:
        """Send one request, failing over to other targets where that is safe.

        :param target_path: raw ``/path?query`` relative to the target's base URL.
        :param headers: sent as given, plus the hooks' (request id, consumer).
        :param can_retry: the body (if any) has not been read yet and may be re-sent.
        :returns: the answer with its body unread; release it (or stream it to its end).
        :raises UpstreamError: every attempt failed, or every circuit is open.
        """
        raw, target = self._send(method, target_path, headers, body, chunked, can_retry)
        return Answer(raw, target.url)

    def _send(self, method: str, target_path: str, headers: dict[str, str], body: Any,
              chunked: bool, can_retry: bool) -> tuple[BaseHTTPResponse, Target]:
        def urlopen(target: Target) -> BaseHTTPResponse:
            request_target = target.base_path + target_path
            return target.pool.urlopen(
                method, request_target, request_target=request_target,
                body=body, headers=headers, chunked=chunked, retries=False,
                redirect=False, assert_same_host=False, timeout=self.timeout,
                preload_content=False, decode_content=False)
        return self.attempt(method, headers, urlopen, lambda response: response.status,
                            can_retry)

    def attempt(self, method: str, headers: dict[str, str], send: Callable[[Target], R],
                status_of: Callable[[R], int], can_retry: bool = True) -> tuple[R, Target]:
        """The one attempt loop of every call to the service, an HTTP request or a
        WebSocket handshake (transport/tunnel.py): pick a target (round robin, health,
        breaker), ``send(target)``, record the outcome in the target's breaker (a
        connection failure or a 5xx counts against it) and on the request's hooks, and
        fail over to the next target where that is safe: up to 1 + ``retries`` attempts
        for idempotent methods, when the connection failed before anything was sent,
        or was reset and the body can be sent again.

        :param headers: what ``send`` sends; the hooks' (request id, consumer) are added.
        :returns: what ``send`` returned, and the target that answered.
        :raises UpstreamError: every attempt failed, or every circuit is open.
        """
        headers.update(self.hooks.headers())
        attempts = 1 + (self.reach.retries if method in IDEMPOTENT else 0)
        tried: list[Target] = []
        started = time.perf_counter()
        while True:
            try:
                target, dirty = self.pick(exclude=tried)
            except UpstreamError as unavailable:
                self.hooks.record("", started, time.perf_counter(), unavailable.kind)
                raise
            tried.append(target)
            breaker = "none" if target.breaker is None else ("tripping" if dirty else "closed")
            done = self.hooks.attempt(method, target.url, len(tried), breaker, headers)
            try:
                result = send(target)
            except TRANSPORT_ERRORS as exc:
                failure = translate(exc, target.url)
                done(None, failure.kind)
                if target.breaker is not None:
                    target.breaker.record(False, dirty)
                if before_sending(exc):
                    target.mark_failed()
                retryable = before_sending(exc) or (can_retry and failure.kind == "reset")
                if len(tried) >= attempts or not retryable:
                    self.hooks.record(target.url, started, time.perf_counter(), failure.kind)
                    raise failure from None
            else:
                status = status_of(result)
                done(status, None)
                if target.breaker is not None:
                    target.breaker.record(status < 500, dirty)
                self.hooks.record(target.url, started, time.perf_counter(), None)
                return result, target

    def call(self, method: str, path: str, *, params: Any = None, json: Any = None,
             data: Any = None, headers: dict[str, str] | None = None) -> requests.Response:
        """A request to this service whose answer is read whole, for hand-written blueprints.

        The same path as the proxy (:meth:`send`): failover, retries, breakers,
        the request id and consumer forwarded, timings on the request's state.
        ``path`` is relative to the upstream's base URL; ``params``, ``json``
        and ``data`` are encoded as :func:`requests.request` does.

        :raises UpstreamError: the service could not be reached, or broke off its answer.
        """
        prepared = requests.Request(method, "http://upstream" + path, params=params, json=json,
                                    data=data, headers=headers).prepare()
        raw, target = self._send(method, prepared.path_url, dict(prepared.headers),
                                 prepared.body, chunked=False, can_retry=True)
        prepared.url = target.url + prepared.path_url
        response = self.adapter.build_response(prepared, raw)
        try:
            _ = response.content  # read it all now: the connection goes back to the pool
        except requests.RequestException as exc:
            raw.close()
            cause = exc.__context__ if isinstance(exc.__context__, Urllib3Error) else exc
            raise translate(cause, target.url) from None
        finally:
            raw.release_conn()
        return response

    def close(self) -> None:
        self.session.close()
