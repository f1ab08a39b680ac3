"""Fixtures: real upstream servers on loopback, gateways built from a config dict.

- ``upstream`` / ``upstream2``: an :class:`~tests.upstream.UpstreamApp` served over HTTP.
- ``make_gateway(config)``: a gateway app served over real HTTP in a thread;
  the result has ``.url``, ``.app`` and ``.client`` (Flask's test client).
- ``raw_request(...)``: one request with http.client, which sends the target
  byte-for-byte (requests and urllib3 would normalise it).
- ``gunicorn_gateway(config)``: the gateway under real gunicorn, as deployed.
"""

from __future__ import annotations

import http.client
import logging
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from hypothesis import settings

from gateway.app import create_app
from gateway.telemetry import accesslog
from gateway.testing.server import stop_group
from tests.upstream import ServerThread, UpstreamApp

ROOT = Path(__file__).resolve().parent.parent

# counts the fault, hostile and soak tests, and prints the reliability line
pytest_plugins = ["tests.reliability", "pytester"]

# Property tests: `make test` is deterministic (the same examples every run);
# `make fuzz` explores with random seeds and many more examples.
settings.register_profile("ci", max_examples=150, derandomize=True, database=None)
settings.register_profile("fuzz", max_examples=2000, derandomize=False, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


#: Fixtures that mean a test drives a real Redis (the ``redis`` marker).
REDIS_FIXTURES = ("redis_url", "private_redis", "redis_cluster", "redis_sentinel")


def pytest_collection_modifyitems(items):
    """Mark what each test drives for real, so `-m "not redis"` and the like select:
    ``redis`` (a fixture above, or the ``storage`` fixture's Redis run), ``unit``
    (tests/unit/: no network at all). ``nginx`` and ``browser`` are marked in their files."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if any(f in item.fixturenames for f in REDIS_FIXTURES) or (
                callspec is not None and callspec.params.get("storage") == "redis"):
            item.add_marker("redis")
        if "unit" in item.path.relative_to(ROOT).parts[:2]:
            item.add_marker("unit")


# In-process gateways log through `logging` in tests: pytest shows the lines of a
# failing test and keeps the others quiet (tests that read lines patch `sink`).
accesslog.sink = logging.getLogger("gateway.access").info


@pytest.fixture
def serve():
    """``serve(wsgi_app)``: serve any WSGI app on loopback for the test; stopped after it."""
    servers = []

    def start(app) -> ServerThread:
        servers.append(ServerThread(app))
        return servers[-1]
    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def upstream():
    server = ServerThread(UpstreamApp("one"))
    yield server
    server.app.gate.set()
    server.stop()


@pytest.fixture
def upstream2():
    server = ServerThread(UpstreamApp("two"))
    yield server
    server.stop()


@dataclass
class Gateway:
    url: str
    port: int
    app: object
    client: object


@pytest.fixture
def make_gateway():
    servers = []

    def build(config: dict | str, clock=None) -> Gateway:
        """:param clock: what its timers read (gateway.testing's MovedClock: moved by hand)."""
        app = create_app(config, clock=clock) if clock is not None else create_app(config)
        server = ServerThread(app)
        servers.append(server)
        return Gateway(url=server.url, port=server.port, app=app, client=app.test_client())

    yield build
    for server in servers:
        server.stop()
        checker = server.app.extensions["gateway"].health_checker
        if checker is not None:
            checker.stop()  # its probing thread, which would otherwise outlive the test
        tracing = server.app.extensions["gateway"].tracing
        if tracing is not None:
            tracing.shutdown()  # its exporter thread, which would otherwise outlive the test
        for document in server.app.extensions["gateway"].pending_documents.values():
            document.stop()  # its fetching thread
        follower = server.app.extensions["gateway"].follower
        if follower is not None:
            follower.stop()  # its thread polling the database
        usage = server.app.extensions["gateway"].usage
        if usage is not None:
            usage.stop()  # its flushing thread


@dataclass
class RawResponse:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = self.all(name)
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


def raw_request(port: int, method: str, target: str, headers: dict | None = None,
                body=None, encode_chunked: bool = False) -> RawResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True,
                        skip_host=any(k.lower() == "host" for k in (headers or {})))
        for key, value in (headers or {}).items():
            conn.putheader(key, value)
        if encode_chunked:
            conn.putheader("Transfer-Encoding", "chunked")
        elif body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        if encode_chunked:
            for chunk in body:
                conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            conn.send(b"0\r\n\r\n")
        elif body is not None:
            conn.send(body)
        resp = conn.getresponse()
        data = resp.read()
        return RawResponse(resp.status, resp.reason, resp.getheaders(), data)
    finally:
        conn.close()


def assert_cut_short(port: int, path: str) -> None:
    """The answer at ``path`` starts (200) and then breaks off: the client sees an
    incomplete body, never a truncated one passed off as complete."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        assert response.status == 200
        with pytest.raises(http.client.IncompleteRead):
            response.read()
    finally:
        conn.close()


def hold_calls(port: int, path: str, count: int, upstream_app, wait: float = 20) -> tuple[int, list[int]]:
    """Send ``count`` calls to the upstream's ``/hold`` at once; once all have
    arrived (or ``wait`` passed), release them.

    :returns: how many were held at the upstream at once, and every status.
    """
    import threading
    statuses: list[int] = []
    upstream_app.gate.clear()
    calls = [threading.Thread(target=lambda: statuses.append(raw_request(port, "GET", path).status))
             for _ in range(count)]
    for t in calls:
        t.start()
    deadline = time.monotonic() + wait
    while upstream_app.in_flight < count and time.monotonic() < deadline:
        time.sleep(0.02)
    held = upstream_app.in_flight
    upstream_app.gate.set()
    for t in calls:
        t.join(timeout=30)
    return held, statuses


def wait_for(condition, timeout: float = 20) -> bool:
    """Whether ``condition()`` came true within ``timeout`` seconds (asked every 0.1 s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return bool(condition())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


#: ports handed out by :func:`dead_port`, held until the session ends
_DEAD: list[socket.socket] = []


def dead_port() -> int:
    """A port on which nothing listens, for the rest of the session.

    Bound and never listening, so a connection to it is refused and no server a
    later test starts can be given it (a port from :func:`free_port` can be:
    a gateway once got its own "dead" upstream's port and proxied to itself).
    """
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    _DEAD.append(sock)
    return sock.getsockname()[1]


def pytest_sessionfinish(session, exitstatus):
    while _DEAD:
        _DEAD.pop().close()


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports (held together while chosen, so none repeats)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def wait_for_port(port: int, process: subprocess.Popen | None = None, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening "
                               f"on {port}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


@dataclass
class GunicornGateway:
    url: str
    port: int
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text()

    def access_lines(self, count: int, timeout: float = 10) -> list[dict]:
        """The JSON access lines, once there are ``count`` of them.

        A line is written as its response finishes, which can be just after
        the client has read the last byte.
        """
        import json
        deadline = time.monotonic() + timeout
        while True:
            lines = [json.loads(line) for line in self.log().splitlines() if line.startswith("{")]
            if len(lines) >= count or time.monotonic() > deadline:
                return lines
            time.sleep(0.05)


    def stop(self) -> None:
        """Stop the master and, whatever happened, every process of its group (a
        worker the master left behind would outlive the suite)."""
        stop_group(self.process)


def start_gunicorn(config: dict | str, directory: Path, workers: int = 2,
                   connections: int | None = None, env: dict | None = None,
                   serve: bool = False, serve_args: tuple[str, ...] = ()) -> GunicornGateway:
    """``gunicorn -c gunicorn.conf.py -b 127.0.0.1:PORT wsgi:app`` on a config (a dict is
    written into ``directory``, with the log); returns once it listens.

    :param serve: start it as an installed gateway is started instead: ``gateway serve``
        from ``directory``, in a session of its own (as a terminal would).
    :param serve_args: more of ``gateway serve``'s options.
    """
    port = free_port()
    if isinstance(config, dict):
        path = directory / f"gateway-{port}.yaml"
        path.write_text(yaml.safe_dump(config))
    else:
        path = Path(config)
    log_path = directory / f"gunicorn-{port}.log"
    full_env = dict(os.environ, GATEWAY_CONFIG=str(path), GATEWAY_WORKERS=str(workers),
                    **(env or {}))
    for name in ("GATEWAY_CONNECTIONS", "GATEWAY_THREADS"):
        full_env.pop(name, None)
    if connections is not None:  # None: gunicorn.conf.py's default
        full_env["GATEWAY_CONNECTIONS"] = str(connections)
    command = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py",
               "-b", f"127.0.0.1:{port}", "wsgi:app"]
    if serve:
        command = [str(Path(sys.executable).parent / "gateway"), "serve", "--config", str(path),
                   "--bind", f"127.0.0.1:{port}", "--workers", str(workers), *serve_args]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=directory if serve else ROOT, env=full_env,
                                   stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)  # its own group: stop_group ends it
    gateway = GunicornGateway(f"http://127.0.0.1:{port}", port, process, log_path)
    try:
        wait_for_port(port, process, timeout=60)  # a start on a machine several times slower
    except RuntimeError as exc:
        gateway.stop()
        raise RuntimeError(f"{exc}\n{gateway.log()}") from None
    return gateway


def slow_boot_settings(directory: Path, seconds: float = 3) -> Path:
    """gunicorn settings: the gateway's, with every worker's boot slowed by ``seconds``
    right after the fork (a busy machine, made certain)."""
    settings = directory / "slow_boot.conf.py"
    settings.write_text(
        "import time\n"
        "from gateway.serve.gunicorn_conf import *  # noqa: F403\n"
        "from gateway.serve import gunicorn_conf as _gateway\n\n"
        "def post_fork(server, worker):\n"
        "    _gateway.post_fork(server, worker)\n"
        f"    time.sleep({seconds})\n")
    return settings


@pytest.fixture
def gunicorn_gateway(tmp_path):
    """``start(config, workers=2, connections=None, env=None, serve=False)``: the gateway
    under gunicorn (``serve``: started by ``gateway serve`` from another directory)."""
    started: list[GunicornGateway] = []

    def start(config: dict | str, workers: int = 2, connections: int | None = None,
              env: dict | None = None, serve: bool = False,
              serve_args: tuple[str, ...] = ()) -> GunicornGateway:
        started.append(start_gunicorn(config, tmp_path, workers, connections, env, serve,
                                      serve_args))
        return started[-1]

    yield start
    for gateway in started:
        gateway.stop()


# -- PostgreSQL ----------------------------------------------------------------------

@pytest.fixture(scope="session")
def suite_postgres():
    """The suite's own PostgreSQL (tests/postgres.py), for the whole session."""
    from tests.postgres import PrivatePostgres

    server = PrivatePostgres()
    server.start()
    yield server
    server.remove()


@pytest.fixture
def postgres_url(suite_postgres, request):
    """A fresh, empty database on the suite's PostgreSQL: its URL."""
    import re

    name = "t_" + re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:40] + \
        f"_{os.getpid()}_{int(time.monotonic() * 1000) % 100000}"
    return suite_postgres.fresh_database(name)


# -- Redis ---------------------------------------------------------------------------

@pytest.fixture(params=["memory", "redis"])
def storage(request):
    """The gateway's ``storage`` URI, once per backend: memory:// and a real Redis."""
    return "memory://" if request.param == "memory" else request.getfixturevalue("redis_url")


@pytest.fixture(scope="session")
def suite_redis(tmp_path_factory):
    """The suite's own redis-server, on a spare port, for the whole session: never
    whatever answers on 6379 (another program's commands would be counted)."""
    server = PrivateRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(suite_redis):
    """A real Redis over a real connection (the suite's own), emptied first."""
    import redis
    client = redis.Redis.from_url(suite_redis.url, socket_connect_timeout=2)
    client.flushall()
    yield suite_redis.url
    client.close()


class PrivateRedis:
    """A redis-server of the test's own, on a free port, that the test may stop and start."""

    def __init__(self, tmp_path: Path):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.dir = tmp_path
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        import shutil
        if not shutil.which("redis-server"):
            pytest.fail("redis-server is not installed: apt-get install redis-server "
                        "(scripts/ensure-redis does this as root)")
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, self.process)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def private_redis(tmp_path):
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


class RedisClusterServers:
    """A Redis Cluster of three masters on free ports (``redis-cli --cluster create``)."""

    def __init__(self, directory: Path):
        self.ports = self.free_ports(3)
        self.dir = directory
        self.processes: list[subprocess.Popen] = []
        self.url = "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports[:2])

    @staticmethod
    def free_ports(count: int) -> list[int]:
        """Ports that are free with the Cluster bus port (10000 above) free too."""
        import random
        ports: list[int] = []
        while len(ports) < count:
            port = random.randint(20000, 55000)
            if port in ports:
                continue
            try:
                for candidate in (port, port + 10000):
                    with socket.socket() as sock:
                        sock.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            ports.append(port)
        return ports

    def start(self) -> None:
        import shutil
        for tool in ("redis-server", "redis-cli"):
            if not shutil.which(tool):
                pytest.fail(f"{tool} is not installed: apt-get install redis-server redis-tools "
                            "(scripts/ensure-redis does this as root)")
        for port in self.ports:
            self.processes.append(subprocess.Popen(
                ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                 "--appendonly", "no", "--dir", str(self.dir), "--cluster-enabled", "yes",
                 "--cluster-config-file", f"nodes-{port}.conf", "--cluster-node-timeout", "2000"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            wait_for_port(port, self.processes[-1])
        subprocess.run(["redis-cli", "--cluster", "create",
                        *(f"127.0.0.1:{p}" for p in self.ports), "--cluster-replicas", "0",
                        "--cluster-yes"], check=True, capture_output=True, timeout=60)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            info = subprocess.run(["redis-cli", "-p", str(self.ports[0]), "cluster", "info"],
                                  capture_output=True, text=True, timeout=10).stdout
            if "cluster_state:ok" in info:
                return
            time.sleep(0.2)
        raise RuntimeError(f"the Redis Cluster on {self.ports} did not come up: {info}")

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
            process.wait(timeout=10)
        self.processes.clear()


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory):
    """A real three-master Redis Cluster for the module's tests (``.url`` is its storage URI)."""
    cluster = RedisClusterServers(tmp_path_factory.mktemp("cluster"))
    cluster.start()
    yield cluster
    cluster.stop()


class RedisSentinelServers:
    """A master, its replica and one sentinel watching them (``.url`` is the storage URI)."""

    SERVICE = "gateway-test"

    def __init__(self, directory: Path):
        self.dir = directory
        self.master_port, self.replica_port, self.sentinel_port = free_ports(3)
        self.url = f"redis+sentinel://127.0.0.1:{self.sentinel_port}/{self.SERVICE}"
        self.processes: dict[str, subprocess.Popen] = {}

    def _server(self, name: str, args: list[str], port: int) -> None:
        self.processes[name] = subprocess.Popen(
            ["redis-server", *args], cwd=self.dir, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        wait_for_port(port, self.processes[name])

    def start(self) -> None:
        common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(self.dir)]
        self._server("master", ["--port", str(self.master_port), *common], self.master_port)
        self._server("replica", ["--port", str(self.replica_port), *common, "--replicaof",
                                 "127.0.0.1", str(self.master_port)], self.replica_port)
        conf = self.dir / "sentinel.conf"  # the sentinel rewrites it: a file of its own
        conf.write_text(f"port {self.sentinel_port}\nbind 127.0.0.1\ndir {self.dir}\n"
                        f"sentinel monitor {self.SERVICE} 127.0.0.1 {self.master_port} 1\n"
                        f"sentinel down-after-milliseconds {self.SERVICE} 1000\n"
                        f"sentinel failover-timeout {self.SERVICE} 5000\n")
        self._server("sentinel", [str(conf), "--sentinel"], self.sentinel_port)

    def master(self) -> int:
        """The port the sentinel names as the master now."""
        out = subprocess.run(["redis-cli", "-p", str(self.sentinel_port), "sentinel",
                              "get-master-addr-by-name", self.SERVICE],
                             capture_output=True, text=True, timeout=10).stdout.split()
        return int(out[1]) if len(out) == 2 else 0

    def kill_master(self) -> None:
        self.processes["master"].kill()
        self.processes["master"].wait(timeout=10)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=10)


@pytest.fixture
def redis_sentinel(tmp_path):
    """A real Redis master, replica and sentinel for one test."""
    servers = RedisSentinelServers(tmp_path)
    servers.start()
    yield servers
    servers.stop()
