"""The ``gateway`` pytest plugin: a team's tests of its own gateway.yaml.

Registered through the ``pytest11`` entry point (installed with the package's
``testing`` extra), so a test file needs no conftest to use its fixtures:

- ``gateway_config``: the config under test. Override it in a conftest (a path,
  or a dict shaped like the YAML); else ``--gateway-config PATH``; else
  ``gateway_config = PATH`` in the pytest settings; else ``gateway.yaml`` in the
  rootdir. Relative paths are relative to the rootdir.
- ``upstreams``: a fake upstream per service (gateway/testing/fakes.py).
- ``gateway_clock``: the clock the gateway reads, moved by hand (``advance``).
- ``gateway_app`` / ``gateway_client``: the app built from the config with every
  upstream replaced by its fake, ``memory://`` storage, no tracing and no health
  checks unless ``@pytest.mark.gateway(...)`` asks; and its Flask test client.
- ``api_key``: ``api_key("acme")``, a working key for that consumer.
- ``issue_token``: ``issue_token(sub="alice", scopes=[...])``, a token the config's
  issuer would issue (its keys served on loopback by the plugin).
- ``gateway_server``: the same config under ``gateway serve``, with the same fakes.

This module imports nothing of the gateway at import time: only the fixtures a
test uses do.
"""

from __future__ import annotations

import copy
import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

#: where the rootdir's gateway.yaml is looked for when nothing else names the config
DEFAULT_FILE = "gateway.yaml"
MARKER = "gateway"
#: what a test may ask of ``@pytest.mark.gateway(...)``
MARKER_OPTIONS = ("storage", "health_checks", "tracing", "workers")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("gateway", "the API gateway under test (gateway.testing)")
    group.addoption("--gateway-config", metavar="PATH", default=None,
                    help="the gateway.yaml the gateway fixtures load (relative to the rootdir)")
    parser.addini("gateway_config", "the gateway.yaml the gateway fixtures load (relative to "
                  "the rootdir)", default=None)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "gateway(storage='memory'|'redis', health_checks=False, tracing=False, "
        "workers=1): what the gateway fixtures start beyond their defaults")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    """A failing test that ran ``gateway_server`` gets the server's log in its report."""
    outcome = yield
    report = outcome.get_result()
    log = getattr(item, "_gateway_server_log", None)
    if log is not None and report.failed and report.when in ("call", "teardown"):
        try:
            text = Path(log).read_text(errors="replace")
        except OSError:
            return
        report.sections.append(("gateway server log", text[-20_000:]))


@pytest.fixture
def gateway_config(request: pytest.FixtureRequest) -> Any:
    """The config under test: ``--gateway-config``, the ``gateway_config`` setting, or the
    rootdir's gateway.yaml. Override this fixture to give a path or a dict."""
    config = request.config
    rootdir = Path(config.rootpath)
    named = config.getoption("gateway_config") or config.getini("gateway_config")
    if named:
        return rootdir / named
    if (rootdir / DEFAULT_FILE).exists():
        return rootdir / DEFAULT_FILE
    raise pytest.UsageError(
        f"gateway.testing: no gateway config: none of these names one, and {rootdir} has no "
        f"{DEFAULT_FILE}:\n"
        "  - a gateway_config fixture in your conftest.py returning a path or a dict\n"
        "  - --gateway-config PATH on the pytest command line\n"
        "  - gateway_config = PATH in the [pytest] settings (pytest.ini, pyproject.toml, "
        "setup.cfg)")


@pytest.fixture
def gateway_clock():
    """The clock every timer of the gateway under test reads; ``advance(seconds)`` moves it
    (the test's own ``time.time()`` does not move)."""
    from .clock import MovedClock

    clock = MovedClock()
    with _limits_follow(clock):
        yield clock


@pytest.fixture
def _gateway_source(request: pytest.FixtureRequest, gateway_config) -> tuple[dict, str]:
    """The config as a mapping, ``${VAR}`` expanded, and where it came from (relative
    files resolve there)."""
    from ..config.loader import expand_env, read_yaml

    rootdir = Path(request.config.rootpath)
    if isinstance(gateway_config, dict):
        raw, source = copy.deepcopy(gateway_config), str(rootdir / DEFAULT_FILE)
    else:
        path = Path(os.fspath(gateway_config))
        if not path.is_absolute():
            path = rootdir / path
        try:
            with open(path, encoding="utf-8") as file:
                raw, _ = read_yaml(file)
        except OSError as error:
            pytest.fail(f"gateway.testing: the config under test, {path}, cannot be read "
                        f"({error.strerror}): fix --gateway-config, the gateway_config "
                        "setting or fixture", pytrace=False)
        source = str(path)
    # (what cannot be expanded is left as written: the config's own check names it)
    return expand_env(raw or {}, "", []), source


@pytest.fixture
def upstreams(_gateway_source) -> Iterator[dict]:
    """A fake upstream per service of the config, by service name."""
    from .fakes import FakeService, FakeUpstream

    raw, _ = _gateway_source
    fakes: dict[str, FakeService] = {}
    for name, service in (raw.get("services") or {}).items():
        service = _service_mapping(service)
        targets = service.get("upstream")
        count = len(targets) if isinstance(targets, list) else 1
        fake = fakes[name] = FakeService(name, count)
        canary = service.get("canary")
        if isinstance(canary, dict) and canary.get("upstream"):
            urls = canary["upstream"]
            fake.canary = FakeService(f"{name}.canary", len(urls) if isinstance(urls, list) else 1)
        mirror = service.get("mirror")
        if isinstance(mirror, dict) and mirror.get("upstream"):
            fake.mirror = FakeUpstream(f"{name}.mirror")
    yield fakes
    for fake in fakes.values():
        fake.close()


@pytest.fixture
def _gateway_idp(_gateway_source) -> Iterator[Any]:
    """The issuers' keys served on loopback (None without issuers): the gateway fetches its
    JWKS there, while each issuer's name stays as written."""
    raw, _ = _gateway_source
    if not raw.get("issuers"):
        yield None
        return
    from .tokens import TestIssuer

    issuer = TestIssuer()
    yield issuer
    issuer.close()


@pytest.fixture
def issue_token(_gateway_source, _gateway_idp, gateway_clock):
    """``issue_token(sub="alice", scopes=["orders:read"], claims={...}, expires_in=300,
    issuer=None, audience=None)``: a bearer token the config's issuer would issue
    (the only or first issuer, its first audience; ``iat``/``exp`` from ``gateway_clock``)."""
    raw, _ = _gateway_source
    issuers = raw.get("issuers") or {}

    def issue(sub: str = "user", scopes: list[str] | None = None, claims: dict | None = None,
              expires_in: int = 300, issuer: str | None = None,
              audience: str | None = None) -> str:
        if not issuers:
            pytest.fail("issue_token: the config has no issuers: (auth: jwt needs one)")
        name = issuer or next(iter(issuers))
        if name not in issuers:
            pytest.fail(f"issue_token(issuer={name!r}): no such issuer (known: "
                        f"{', '.join(issuers)})")
        settings = issuers[name]
        return _gateway_idp.token(
            iss=settings["issuer"], aud=audience or settings["audiences"][0], sub=sub,
            scopes=scopes, claims=claims or {}, now=gateway_clock.time(),
            expires_in=expires_in, algorithms=settings.get("algorithms"))
    return issue


@pytest.fixture
def _test_keys(_gateway_source) -> dict[str, str]:
    """A key of this test's own for each consumer of the config: its hash goes into the
    config under test (the file holds only hashes; a served gateway reads the file)."""
    raw, _ = _gateway_source
    return {str(name): f"test-{name}-{secrets.token_hex(8)}"
            for name in (raw.get("consumers") or {})}


@pytest.fixture
def _config_under_test(request: pytest.FixtureRequest, _gateway_source, upstreams,
                       _gateway_idp, _test_keys) -> dict:
    """The config as the fixtures run it: fakes for upstreams, test keys added, the
    marker's storage, no tracing or health checks unless asked."""
    raw, _ = _gateway_source
    rootdir = str(request.config.rootpath)
    if rootdir not in sys.path:  # the blueprints: named as modules of the project
        sys.path.insert(0, rootdir)
    return _swapped(raw, upstreams, _marker_options(request), request, _gateway_idp,
                    _test_keys)


@pytest.fixture
def gateway_app(request: pytest.FixtureRequest, _gateway_source, _config_under_test,
                upstreams, gateway_clock):
    """The gateway built from the config, every upstream replaced by its fake."""
    from ..app import create_app
    from ..config import parse_config
    from ..extension import gateway_of
    from ..routing import CONFIG_CHECKS

    _, source = _gateway_source
    config = parse_config(_config_under_test, source=source, checks=CONFIG_CHECKS)
    app = create_app(config, clock=gateway_clock)
    gateway = gateway_of(app)
    for fake in upstreams.values():  # what the app asked while it was built (OpenAPI
        fake.forget_requests()       # documents) is not what the test sent
    checker = gateway.health_checker
    if checker is not None and checker.upstreams:
        # probes run on the test's clock: a round now, then each as an advance reaches it
        checker.stop()
        gateway_clock.on_advance(checker.run_due, checker.run_due())
    yield app
    for part in (gateway.usage, gateway.follower, gateway.health_checker, gateway.tracing):
        if part is None:
            continue
        (part.shutdown if part is gateway.tracing else part.stop)()  # type: ignore[union-attr]
    for document in gateway.pending_documents.values():
        document.stop()


@pytest.fixture
def gateway_client(gateway_app):
    """``gateway_app.test_client()``, reading each answer whole (its access-log line, its
    cache entry and its usage are written before the next request)."""
    return _WholeAnswers(gateway_app)


@pytest.fixture
def api_key(request: pytest.FixtureRequest, _gateway_source, _test_keys):
    """``api_key("acme")``: a key the gateway accepts for consumer ``acme``, with
    ``gateway_client`` and ``gateway_server`` alike. A consumer of gateway.yaml gets a key
    of the test's own (the file holds only hashes); a consumer of the database gets a key
    issued in it (label ``gateway.testing``), revoked after the test."""
    raw, source = _gateway_source

    def key_for(consumer: str) -> str:
        if consumer in _test_keys:
            return _test_keys[consumer]
        key = _issued_in_database(request, raw, source, consumer) if raw.get("database") \
            else None
        if key is None:
            known = ", ".join(sorted(_test_keys)) or "none"
            where = " in gateway.yaml or the database" if raw.get("database") else ""
            pytest.fail(f"api_key({consumer!r}): no such consumer{where} (known: {known})")
        return key
    return key_for


def _issued_in_database(request: pytest.FixtureRequest, raw: dict, source: str,
                        consumer: str) -> str | None:
    """A key issued in the database for ``consumer`` (None: no such consumer there), known
    to the gateway under test before it is returned; revoked when the test ends."""
    from ..db import NotFound, Records, open_engine

    engine = open_engine(raw["database"], source)
    try:
        issued = Records(engine, actor="gateway.testing").issue_key(consumer, "gateway.testing")
    except NotFound:
        engine.dispose()
        return None

    def revoke() -> None:
        Records(engine, actor="gateway.testing").revoke_key(issued["id"])
        engine.dispose()
    request.addfinalizer(revoke)
    key = issued["key"]
    if "gateway_app" in request.fixturenames:  # known at once, not at the follower's poll
        from ..extension import gateway_of
        from ..keyring.directory import KeyEntry, digest

        directory = gateway_of(request.getfixturevalue("gateway_app")).directory
        directory._keys[digest(key)] = KeyEntry(issued["id"], consumer, None)
    if "gateway_server" in request.fixturenames:
        _until_accepted(request.getfixturevalue("gateway_server"), key)
    return key


def _until_accepted(url: str, key: str, timeout: float = 10.0) -> None:
    """Wait for a served gateway to follow a new key (its own /_gateway/usage: free)."""
    import time

    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if requests.get(f"{url}/_gateway/usage", headers={"X-API-Key": key},
                        timeout=5).status_code != 401:
            return
        time.sleep(0.05)
    pytest.fail(f"the gateway under test did not accept a key issued in its database "
                f"within {timeout:g}s")


@pytest.fixture
def gateway_server(request: pytest.FixtureRequest, _config_under_test, tmp_path
                   ) -> Iterator[str]:
    """The same config under ``gateway serve`` on a free loopback port, with the same
    fakes (1 worker; ``@pytest.mark.gateway(workers=N)`` for more, with
    ``storage="redis"`` to share their counters): its base URL. Its log is attached to
    a failing test's report; it is stopped (nothing left listening) after the test."""
    from .server import GatewayServer

    workers = int(_marker_options(request).get("workers", 1))
    server = GatewayServer(_config_under_test, tmp_path, workers)
    request.node._gateway_server_log = server.log_path
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


# -- the parts --------------------------------------------------------------------------

def _service_mapping(service: Any) -> dict:
    """A service as a mapping (``users: http://...`` and a list of URLs are shorthands)."""
    if isinstance(service, (str, list)):
        return {"upstream": service}
    return dict(service or {})


def _fake_urls(urls: Any, fakes) -> Any:
    """Each target's URL with its fake's address, its path kept (a base path goes on)."""
    from urllib.parse import urlsplit

    listed = urls if isinstance(urls, list) else [urls]
    swapped = [fake.url + urlsplit(str(url)).path.rstrip("/")
               for url, fake in zip(listed, fakes, strict=True)]
    return swapped if isinstance(urls, list) else swapped[0]


def _swapped(raw: dict, upstreams: dict, asked: dict, request: pytest.FixtureRequest,
             idp=None, test_keys: dict[str, str] | None = None) -> dict:
    from ..config import hash_key

    config = copy.deepcopy(raw)
    for name, key in (test_keys or {}).items():
        consumer = config["consumers"][name]
        consumer["keys"] = [*(consumer.get("keys") or []), hash_key(key)]
    services = config.get("services") or {}
    for name, service in list(services.items()):
        service = services[name] = _service_mapping(service)
        fake = upstreams[name]
        service["upstream"] = _fake_urls(service["upstream"], fake.targets)
        if fake.canary is not None:
            service["canary"] = {**service["canary"],
                                 "upstream": _fake_urls(service["canary"]["upstream"],
                                                        fake.canary.targets)}
        if fake.mirror is not None:
            service["mirror"] = {**service["mirror"],
                                 "upstream": _fake_urls(service["mirror"]["upstream"],
                                                        [fake.mirror])}
        if not asked.get("health_checks"):
            service.pop("health_check", None)
    for settings in (config.get("issuers") or {}).values():
        if idp is not None and not settings.get("introspection"):
            settings["jwks_uri"] = idp.jwks_uri  # its name (iss) stays as written
    if not asked.get("tracing"):
        config.pop("tracing", None)
    storage = asked.get("storage", "memory")
    if storage == "memory":
        config["storage"] = "memory://"
    elif storage == "redis":
        config["storage"] = request.getfixturevalue("gateway_redis_url")
    else:
        pytest.fail(f"@pytest.mark.gateway(storage={storage!r}): expected 'memory' or 'redis'")
    return config


def _marker_options(request: pytest.FixtureRequest) -> dict:
    marker = request.node.get_closest_marker(MARKER)
    if marker is None:
        return {}
    if marker.args:
        pytest.fail("@pytest.mark.gateway takes keywords only: "
                    f"{', '.join(f'{o}=...' for o in MARKER_OPTIONS)}")
    unknown = sorted(set(marker.kwargs) - set(MARKER_OPTIONS))
    if unknown:
        pytest.fail(f"@pytest.mark.gateway: unknown option(s) {', '.join(unknown)} "
                    f"(known: {', '.join(MARKER_OPTIONS)})")
    return dict(marker.kwargs)


@pytest.fixture
def gateway_redis_url(request: pytest.FixtureRequest) -> str:
    """The Redis a ``@pytest.mark.gateway(storage="redis")`` test counts in: ``$GATEWAY_TEST_REDIS``
    (default ``redis://127.0.0.1:6379``), one database per xdist worker, emptied first."""
    from urllib.parse import urlsplit

    import redis

    base = urlsplit(os.environ.get("GATEWAY_TEST_REDIS", "redis://127.0.0.1:6379"))
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    number = int("".join(c for c in worker if c.isdigit()) or 0) % 15 + 1
    url = f"{base.scheme}://{base.netloc}/{number}"
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.flushdb()
    except redis.RedisError as error:
        pytest.fail(f"@pytest.mark.gateway(storage='redis'): no Redis at {url} ({error}): "
                    "start one (redis-server) or set GATEWAY_TEST_REDIS")
    finally:
        client.close()
    return url


class _WholeAnswers:
    """A Flask test client whose answers are read whole and closed as they come."""

    def __init__(self, app):
        self._client = app.test_client()

    def open(self, *args, **kwargs):
        kwargs.setdefault("buffered", True)
        return self._client.open(*args, **kwargs)

    def __getattr__(self, name: str):
        method = name.upper()
        if method in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"):
            return lambda *args, **kwargs: self.open(*args, method=method, **kwargs)
        return getattr(self._client, name)


class _limits_follow:
    """``limits``' memory storage and strategies read ``time.time()`` themselves: while a
    test's clock is in use they read that clock (their module's ``time`` replaced)."""

    def __init__(self, clock):
        self.clock = clock
        self.saved: list[tuple[Any, Any]] = []

    def __enter__(self):
        import limits.storage.memory
        import limits.strategies

        shim = _TimeModule(self.clock)
        for module in (limits.storage.memory, limits.strategies):
            self.saved.append((module, module.time))
            module.time = shim  # type: ignore[attr-defined]
        return self

    def __exit__(self, *exc) -> None:
        for module, original in self.saved:
            module.time = original  # type: ignore[attr-defined]


class _TimeModule:
    """What ``limits`` asks of ``time``: ``time()`` and ``monotonic()``, from the clock."""

    def __init__(self, clock):
        self._clock = clock

    def time(self) -> float:
        return self._clock.time()

    def monotonic(self) -> float:
        return self._clock.monotonic()

    def __getattr__(self, name: str):
        import time
        return getattr(time, name)

