"""The transport: pools, targets, failover, timeouts and error translation.

One :class:`Upstream` per service owns a ``requests.Session`` whose
:class:`ProxyAdapter` holds one urllib3 pool per target. Per request the
gateway drives that pool's ``urlopen`` directly: requests' per-call pipeline
(cookie jar, URL re-parsing, hooks, content decoding) costs more than it gives
a proxy, and it would re-encode the path and decompress bodies, which a proxy
must never do. The Session stays the owner of pools, TLS settings and adapters.

Nothing outside this module sees a urllib3 or requests exception: failures
become :class:`UpstreamError` (502 for refused/reset, 504 for timeouts).
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field
from typing import Any, Iterable

import requests
from requests.adapters import HTTPAdapter
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, SSLError
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import TimeoutError as Urllib3TimeoutError
from urllib3.response import BaseHTTPResponse
from urllib3.util import Timeout

from .config import ServiceConfig
from .errors import GatewayError

#: Connections kept per target and worker. gthread runs GATEWAY_THREADS
#: requests at once per worker, so a pool this size never discards connections.
DEFAULT_POOL_SIZE = 128
#: How long a target that refused or timed out a connection is passed over
#: while others are healthy (nginx's ``fail_timeout`` default).
FAIL_TIMEOUT = 10.0
#: Methods safe to send twice (RFC 9110 §9.2.2): only these are retried.
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})
READ_CHUNK = 64 * 1024


class UpstreamError(GatewayError):
    """The upstream could not be reached or did not answer in time.

    ``kind`` is one of ``connect``, ``timeout``, ``reset``, ``tls`` (for logs and metrics).
    """

    def __init__(self, status: int, code: str, message: str, kind: str, target: str,
                 headers: dict[str, str] | None = None):
        super().__init__(status, code, message, headers)
        self.kind = kind
        self.target = target


class _RawTargetMixin:
    """Sends the request target exactly as given.

    ``urlopen`` percent-normalises targets (``%2f`` becomes ``%2F``, ``|`` is
    escaped); a proxy must forward the client's bytes. ``urlopen`` hands its
    extra keywords to ``_make_request``, which is where the raw target is put back.
    """

    def _make_request(self, conn, method, url, *args, request_target=None, **kwargs):
        return super()._make_request(conn, method, request_target or url, *args, **kwargs)


class RawTargetHTTPConnectionPool(_RawTargetMixin, HTTPConnectionPool):
    pass


class RawTargetHTTPSConnectionPool(_RawTargetMixin, HTTPSConnectionPool):
    pass


class ProxyAdapter(HTTPAdapter):
    """requests' adapter with pools that forward request targets unchanged."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": RawTargetHTTPConnectionPool, "https": RawTargetHTTPSConnectionPool}


@dataclass(eq=False)
class Target:
    """One upstream base URL and its connection pool."""

    url: str
    pool: HTTPConnectionPool
    base_path: str
    host_header: str
    failed_until: float = field(default=0.0)
    #: a CircuitBreaker when the service has one (gateway/policies/breaker.py)
    breaker: Any = None

    def mark_failed(self) -> None:
        self.failed_until = time.monotonic() + FAIL_TIMEOUT

    @property
    def healthy(self) -> bool:
        return self.failed_until <= time.monotonic()


class Upstream:
    """A service's targets, balanced round-robin, with retries across them."""

    def __init__(self, service: ServiceConfig, pool_size: int = DEFAULT_POOL_SIZE,
                 breaker_factory=None):
        """
        :param breaker_factory: ``f(target_url) -> CircuitBreaker``, when the
            service has ``circuit_breaker`` configured.
        """
        self.service = service
        self.session = requests.Session()
        adapter = ProxyAdapter(pool_connections=len(service.upstreams) or 1,
                               pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.timeout = Timeout(connect=service.timeout.connect, read=service.timeout.read)
        self.targets = [self._target(adapter, url) for url in service.upstreams]
        if breaker_factory is not None:
            for target in self.targets:
                target.breaker = breaker_factory(target.url)
        self._turn = itertools.count()

    def _target(self, adapter: ProxyAdapter, url: str) -> Target:
        # the Session's own TLS settings (certifi bundle, verify) pick the pool
        prepared = requests.Request("GET", url).prepare()
        pool = adapter.get_connection_with_tls_context(
            prepared, verify=self.session.verify, cert=self.session.cert)
        parts = requests.utils.urlparse(url)
        return Target(url=url, pool=pool, base_path=parts.path.rstrip("/"),
                      host_header=parts.netloc)

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
                            f"the {self.service.name} service is failing; its circuit is open",
                            "circuit_open", "", headers={"Retry-After": retry_after})

    def send(self, method: str, target_path: str, headers: dict[str, str],
             body: Any, chunked: bool, can_retry: bool) -> tuple[BaseHTTPResponse, Target]:
        """Send one request, failing over to other targets where that is safe.

        :param target_path: raw ``/path?query`` relative to the target's base URL.
        :param can_retry: the body (if any) has not been read yet and may be re-sent.
        :returns: the response with its body unread, and the target that gave it.
        :raises UpstreamError: every attempt failed, or every circuit is open.
        """
        attempts = 1 + (self.service.retries if method in IDEMPOTENT else 0)
        tried: list[Target] = []
        while True:
            target, dirty = self.pick(exclude=tried)
            tried.append(target)
            try:
                request_target = target.base_path + target_path
                response = target.pool.urlopen(
                    method, request_target, request_target=request_target,
                    body=body, headers=headers, chunked=chunked, retries=False,
                    redirect=False, assert_same_host=False, timeout=self.timeout,
                    preload_content=False, decode_content=False)
            except Urllib3Error as exc:
                error = translate(exc, target.url)
                if target.breaker is not None:
                    target.breaker.record(False, dirty)
                if _before_sending(exc):
                    target.mark_failed()
                retryable = _before_sending(exc) or (can_retry and error.kind == "reset")
                if len(tried) >= attempts or not retryable:
                    raise error from None
            else:
                if target.breaker is not None:
                    target.breaker.record(response.status < 500, dirty)
                return response, target

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """A plain ``requests`` call to this service, for hand-written blueprints.

        It goes through the service's pools and timeouts, and raises
        :class:`UpstreamError` like the proxy does. ``path`` is relative to the
        upstream's base URL.
        """
        target, dirty = self.pick()
        kwargs.setdefault("timeout", (self.service.timeout.connect, self.service.timeout.read))
        kwargs.setdefault("allow_redirects", False)
        try:
            response = self.session.request(method, target.url + path, **kwargs)
        except requests.RequestException as exc:
            if target.breaker is not None:
                target.breaker.record(False, dirty)
            target.mark_failed()
            if isinstance(exc, requests.Timeout):
                raise UpstreamError(504, "gateway_timeout", "the upstream service did not answer "
                                    "in time", "timeout", target.url) from None
            raise UpstreamError(502, "bad_gateway", "the upstream service could not be reached",
                                "connect", target.url) from None
        if target.breaker is not None:
            target.breaker.record(response.status_code < 500, dirty)
        return response

    def close(self) -> None:
        self.session.close()


def _before_sending(exc: Exception) -> bool:
    """The connection failed before any byte of the request went out."""
    return isinstance(exc, (NewConnectionError, ConnectTimeoutError))


def translate(exc: Exception, target: str) -> UpstreamError:
    """Map a urllib3 failure to the status and code the client gets."""
    if isinstance(exc, NewConnectionError):
        return UpstreamError(502, "bad_gateway", "the upstream service refused the connection",
                             "connect", target)
    if isinstance(exc, Urllib3TimeoutError):  # connect and read timeouts alike
        return UpstreamError(504, "gateway_timeout", "the upstream service did not answer in time",
                             "timeout", target)
    if isinstance(exc, SSLError):
        return UpstreamError(502, "bad_gateway", "the TLS handshake with the upstream failed",
                             "tls", target)
    return UpstreamError(502, "bad_gateway", "the upstream service closed the connection "
                         "without a valid response", "reset", target)


class UpstreamBody:
    """The upstream response body as a WSGI iterable, streamed chunk by chunk.

    Each ``read1`` returns what has arrived (a server-sent event, one JSON
    line) instead of waiting for a full buffer. ``close`` (called by the WSGI
    server, also when the client goes away) returns the connection to the pool
    if the body was read to the end, and closes it otherwise.
    """

    def __init__(self, response: BaseHTTPResponse):
        self.response = response
        self.bytes_sent = 0
        self.complete = False
        self.closed = False
        self.error: UpstreamError | None = None
        #: keeps a copy of the body for the response cache (policies/cache.py)
        self.recorder = None
        #: called with this body once it is closed (access log, metrics)
        self.callbacks: list = []

    def __iter__(self):
        response = self.response
        try:
            # length_remaining is None for chunked/close-delimited bodies
            while response.length_remaining != 0:
                chunk = response.read1(READ_CHUNK, decode_content=False)
                if not chunk:
                    break
                self.bytes_sent += len(chunk)
                if self.recorder is not None:
                    self.recorder.add(chunk)
                yield chunk
            self.complete = True
            if self.recorder is not None:
                # before the server writes the end of the body: the next request can hit
                self.recorder.finish(True)
                self.recorder = None
        except (Urllib3Error, OSError) as exc:
            # The status line is already out: the only honest signal left is to
            # cut the body short, so the WSGI server aborts the client connection.
            self.error = translate(exc, "")
            raise

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if not self.complete and self.response.length_remaining != 0:
            self.response.close()  # unread bytes: the connection cannot be reused
        self.response.release_conn()
        if self.recorder is not None:
            self.recorder.finish(self.complete)
        for callback in self.callbacks:
            callback(self)


def on_finished(response, callback) -> None:
    """Call ``callback(bytes_sent, error)`` once the response body has gone out.

    For a streamed upstream body that is when the WSGI server closes it; for
    anything else, when werkzeug closes the response.
    """
    body = response.response
    if isinstance(body, UpstreamBody):
        body.callbacks.append(lambda b: callback(b.bytes_sent, b.error))
    else:
        response.call_on_close(lambda: callback(response.content_length or 0, None))
