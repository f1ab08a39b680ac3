"""Active health checks: probe each target, take a failing one out of the rotation.

Every worker runs a :class:`HealthChecker`, but a target is probed once per
``interval`` per host, not per worker: the workers share a :class:`Board`
where the probe's outcome is kept, and the first worker to claim a target's
round probes it while the others read what it found. With Redis storage the
board is Redis, and a target is probed once per interval across all hosts;
otherwise it is a small file per target that the workers of a host lock in
turn (gunicorn's metrics directory, which outlives reloads, so a reload keeps
the state of targets that did not change).

``unhealthy_threshold`` failed probes in a row (refused, timed out, a status
outside ``expect_status``) take a target out (``Target.probe_healthy``);
``healthy_threshold`` successes bring it back. :meth:`Upstream.pick` passes
over targets that are out, unless every target is. Probes carry
``User-Agent: gateway-health-check`` and touch no client's state.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass

from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.util import Timeout

from ..clock import SYSTEM, Clock
from ..config.health import HealthCheckConfig
from ..storage import BACKEND_ERRORS
from .upstream import NOT_SENT, Target, Upstream

log = logging.getLogger("gateway.health")

USER_AGENT = "gateway-health-check"


@dataclass
class ProbeState:
    """A target's probed health, as every worker sees it."""

    healthy: bool = True
    successes: int = 0
    failures: int = 0
    #: when the last probe ran (``time.time()``); 0: never
    probed_at: float = 0.0

    def after(self, ok: bool, config: HealthCheckConfig, now: float) -> ProbeState:
        successes, failures = (self.successes + 1, 0) if ok else (0, self.failures + 1)
        healthy = self.healthy
        if healthy and failures >= config.unhealthy_threshold:
            healthy = False
        elif not healthy and successes >= config.healthy_threshold:
            healthy = True
        return ProbeState(healthy, successes, failures, now)


class Board:
    """Where the workers of a host (or every host) keep each target's probe state."""

    def round(self, key: str, interval: float, probe: Callable[[], bool],
              config: HealthCheckConfig, now: float) -> ProbeState:
        """Probe the target if nobody has this interval; the state either way.

        :param now: seconds since the epoch (the gateway's clock)."""
        raise NotImplementedError

    def peek(self, key: str) -> ProbeState | None:
        """The state last stored for the target, without probing; None: never probed."""
        raise NotImplementedError


class FileBoard(Board):
    """One JSON file per target in a directory the workers of one host share."""

    def __init__(self, directory: str | None = None):
        self.directory = directory or os.environ.get("PROMETHEUS_MULTIPROC_DIR") or \
            tempfile.mkdtemp(prefix="gateway-health-")

    def _path(self, key: str) -> str:
        name = hashlib.sha256(key.encode()).hexdigest()[:32]
        return os.path.join(self.directory, f"health-{name}.json")

    def peek(self, key):
        state = self._state(key)
        return state if state.probed_at else None

    def _state(self, key: str) -> ProbeState:
        """The stored state: always a whole file (it is replaced, never rewritten)."""
        try:
            with open(self._path(key)) as file:
                return _read(file)
        except OSError:
            return ProbeState()

    def round(self, key, interval, probe, config, now):
        # the round's lock is a file of its own: the state file is replaced whole
        # (a reader never sees it half written, as it did when it was truncated and
        # rewritten in place: an empty read was a healthy default)
        with open(self._path(key) + ".lock", "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # another worker is probing it right now
                return self._state(key)
            try:
                state = self._state(key)
                if now - state.probed_at < interval * 0.9:
                    return state  # probed this interval already
                state = state.after(probe(), config, now)
                path = self._path(key)
                temporary = f"{path}.{os.getpid()}.tmp"
                with open(temporary, "w") as file:
                    file.write(json.dumps(asdict(state)))
                os.replace(temporary, path)
                return state
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _read(file) -> ProbeState:
    file.seek(0)
    try:
        return ProbeState(**json.loads(file.read() or "{}"))
    except (ValueError, TypeError):
        return ProbeState()


class RedisBoard(Board):
    """The state in Redis: one probe per interval across every host."""

    def __init__(self, connection: Callable[[], object], fallback: Board,
                 on_error: Callable[[Exception], None]):
        self.connection, self.fallback, self.on_error = connection, fallback, on_error

    def peek(self, key):
        try:
            stored = self.connection().get(_state_key(key))  # type: ignore[attr-defined]
        except BACKEND_ERRORS:
            return self.fallback.peek(key)
        return ProbeState(**json.loads(stored)) if stored else self.fallback.peek(key)

    def round(self, key, interval, probe, config, now):
        state_key = _state_key(key)
        try:
            client = self.connection()
            claimed = client.set(state_key + ":round", "1", nx=True,  # type: ignore[attr-defined]
                                 px=max(1, int(interval * 900)))
            if not claimed:
                stored = client.get(state_key)  # type: ignore[attr-defined]
                return ProbeState(**json.loads(stored)) if stored else ProbeState()
            stored = client.get(state_key)  # type: ignore[attr-defined]
            state = (ProbeState(**json.loads(stored)) if stored else ProbeState()).after(
                probe(), config, now)
            client.set(state_key, json.dumps(asdict(state)))  # type: ignore[attr-defined]
            return state
        except BACKEND_ERRORS as exc:  # Redis down: this host probes for itself
            self.on_error(exc)
            log.warning("health state store unreachable (%s): this host probes on its own", exc)
            return self.fallback.round(key, interval, probe, config, now)


def _key(service: str, target: Target) -> str:
    """A target's name on the board: a changed URL starts afresh."""
    return f"{service}:{target.url}"


def _state_key(key: str) -> str:
    return f"{{gateway-health:{key}}}"  # one hash slot on a Cluster


def probe(target: Target, config: HealthCheckConfig) -> bool:
    """One GET of the health path on one target: whether it answered as expected."""
    try:
        response = target.pool.urlopen(
            "GET", target.base_path + config.path,
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": NOT_SENT},
            retries=False, redirect=False, assert_same_host=False, preload_content=False,
            timeout=Timeout(connect=config.timeout, read=config.timeout))
    except Urllib3Error:
        return False
    try:
        response.drain_conn()
    except Urllib3Error:
        return False
    finally:
        response.release_conn()
    return config.healthy_status(response.status)


class HealthChecker:
    """Probes the targets of every service with a ``health_check``, in a thread of its own."""

    def __init__(self, upstreams: list[tuple[str, Upstream]], board: Board,
                 on_state: Callable[[str, str, bool], None] | None = None,
                 clock: Clock = SYSTEM):
        """:param upstreams: (service, upstream) pairs, a canary's included.
        :param on_state: ``f(service, target, healthy)`` after each round.
        :param clock: when probes are due, and when each ran."""
        self.upstreams = [(name, u) for name, u in upstreams if u.reach.health_check]
        self.board = board
        self.clock = clock
        self._due: dict[tuple[str, str], float] = {}
        self.on_state = on_state or (lambda service, target, healthy: None)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Take the state the board holds (a reload keeps the state of targets
        that did not change: no request meets a target known to be out while
        the new worker's first round runs), then probe in the background."""
        for name, upstream in self.upstreams:
            for target in upstream.targets:
                state = self.board.peek(_key(name, target))
                if state is not None:
                    target.probe_healthy = state.healthy
                    self.on_state(name, target.url, state.healthy)
        if self.upstreams and self._thread is None:
            self._thread = threading.Thread(target=self._run, daemon=True,
                                            name="gateway-health")
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            wake = self.run_due()
            self._stop.wait(timeout=max(0.05, wake - self.clock.monotonic()))

    def run_due(self) -> float:
        """Probe every target whose interval has come (by the clock); when the next is due."""
        due = self._due
        now = self.clock.monotonic()
        for name, upstream in self.upstreams:
            config = upstream.reach.health_check
            assert config is not None
            for target in upstream.targets:
                if due.get((name, target.url), float("-inf")) > now:
                    continue
                due[(name, target.url)] = now + config.interval
                self.check(name, target, config)
        return min(due.values(), default=now + 1.0)

    def check(self, service: str, target: Target, config: HealthCheckConfig) -> None:
        try:
            state = self.board.round(_key(service, target), config.interval,
                                     lambda: probe(target, config), config, self.clock.time())
        except Exception:  # a probe must never stop the others
            log.exception("health check of %s failed", target.url)
            return
        if state.healthy != target.probe_healthy:
            log.warning("%s %s is %s (health check %s)", service, target.url,
                        "back in rotation" if state.healthy else "out of rotation",
                        config.path)
        target.probe_healthy = state.healthy
        self.on_state(service, target.url, state.healthy)
