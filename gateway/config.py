"""Gateway configuration: one YAML file, parsed and validated once at start-up.

The file is read into small frozen dataclasses (:class:`GatewayConfig`,
:class:`ServiceConfig`) so the rest of the gateway never touches raw YAML.
Every mistake is collected with the key path that holds it and a sentence
saying what was expected, and all of them are reported together in one
:class:`ConfigError`, so a user fixes the file in one pass.

``${VAR}`` (or ``${VAR:-default}``) inside any string value is replaced from
the environment before validation.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import ipaddress
import os
import re
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import urlsplit

import yaml
from limits import parse_many

#: Where the config file is looked for when ``GATEWAY_CONFIG`` is not set.
DEFAULT_CONFIG_PATH = "./gateway.yaml"
ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
DEFAULT_CONNECT_TIMEOUT = 2.0
DEFAULT_READ_TIMEOUT = 30.0
DEFAULT_RETRIES = 2
#: Paths the gateway serves itself; no service may be mounted over them.
RESERVED_PATHS = ("/healthz", "/readyz", "/metrics")
DEFAULT_CACHE_STATUSES = frozenset({200, 203, 204, 300, 301, 404, 410})
DEFAULT_CACHE_MAX_BODY = 1024 * 1024
RATE_LIMIT_STRATEGIES = ("fixed-window", "moving-window", "sliding-window-counter")
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
DEFAULT_METRICS_ALLOW = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_SERVICE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
_BLUEPRINT_REF = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_KEY_HASH = re.compile(r"^sha256:[0-9a-f]{64}$")


def hash_key(key: str) -> str:
    """The form API keys are stored and compared in: ``sha256:<hex>``."""
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


class ConfigError(Exception):
    """The configuration is invalid; ``problems`` lists each mistake."""

    def __init__(self, problems: list[str], source: str = "config"):
        self.problems = problems
        self.source = source
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid gateway configuration ({source}):\n{lines}")


@dataclass(frozen=True)
class Timeout:
    connect: float = DEFAULT_CONNECT_TIMEOUT
    read: float = DEFAULT_READ_TIMEOUT


@dataclass(frozen=True)
class CacheConfig:
    ttl: float
    statuses: frozenset[int] = DEFAULT_CACHE_STATUSES
    #: answers with a larger body are streamed through but not stored
    max_body_bytes: int = DEFAULT_CACHE_MAX_BODY


@dataclass(frozen=True)
class BreakerConfig:
    failures: int = 5
    reset_after: float = 30.0


@dataclass(frozen=True)
class CorsConfig:
    origins: tuple[str, ...]
    methods: tuple[str, ...] | None = None      # default: the route's methods
    headers: tuple[str, ...] | None = None      # default: whatever the preflight asks for
    expose_headers: tuple[str, ...] = ()
    credentials: bool = False
    max_age: int = 600


@dataclass(frozen=True)
class Policies:
    """The per-route policies; each is off (None/empty) unless configured."""

    auth: str = "none"
    rate_limit: str | None = None
    cache: CacheConfig | None = None
    circuit_breaker: BreakerConfig | None = None
    cors: CorsConfig | None = None
    allow_ips: tuple[IPNetwork, ...] = ()
    deny_ips: tuple[IPNetwork, ...] = ()
    max_body_bytes: int | None = None


@dataclass(frozen=True)
class ServiceConfig:
    """One backend service, mounted at ``prefix``."""

    name: str
    upstreams: tuple[str, ...]
    prefix: str
    strip_prefix: bool = False
    methods: tuple[str, ...] = ALL_METHODS
    timeout: Timeout = field(default_factory=Timeout)
    retries: int = DEFAULT_RETRIES
    preserve_host: bool = False
    policies: Policies = field(default_factory=Policies)


@dataclass(frozen=True)
class BlueprintConfig:
    """A hand-written blueprint (``package.module:name``) and its policies."""

    ref: str
    policies: Policies = field(default_factory=Policies)


@dataclass(frozen=True)
class ConsumerConfig:
    """A client of the gateway. Only hashes of its keys are kept."""

    name: str
    key_hashes: frozenset[str]
    rate_limit: str | None = None
    services: frozenset[str] | None = None
    #: how many keys were written in plain text (``gateway check`` warns)
    plain_keys: int = 0


@dataclass(frozen=True)
class GatewayConfig:
    """The whole gateway: shared settings and the services it fronts."""

    services: Mapping[str, ServiceConfig]
    storage: str = "memory://"
    trusted_proxies: int = 0
    blueprints: tuple[BlueprintConfig, ...] = ()
    consumers: Mapping[str, ConsumerConfig] = field(default_factory=dict)
    rate_limit_strategy: str = "fixed-window"
    on_storage_error: str = "allow"
    metrics_allow_ips: tuple[IPNetwork, ...] = DEFAULT_METRICS_ALLOW
    source: str = "<mapping>"


def load_config(path: str | None = None) -> GatewayConfig:
    """Read, expand and validate the YAML file at ``path``.

    :param path: the file; defaults to ``$GATEWAY_CONFIG``, then ``./gateway.yaml``.
    :raises ConfigError: the file is missing, not YAML, or invalid.
    """
    path = path or os.environ.get("GATEWAY_CONFIG") or DEFAULT_CONFIG_PATH
    try:
        with open(path, encoding="utf-8") as fh:
            raw = yaml.safe_load(fh)
    except FileNotFoundError:
        raise ConfigError(
            [f"file {path!r} does not exist: set GATEWAY_CONFIG to your gateway.yaml "
             "(see examples/gateway.yaml)"], path) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"not valid YAML: {exc}"], path) from None
    return parse_config(raw if raw is not None else {}, source=path)


def parse_config(raw: Any, source: str = "<mapping>") -> GatewayConfig:
    """Validate an already-loaded mapping (a parsed YAML file, or a test's dict)."""
    problems: list[str] = []
    raw = _expand_env(raw, "", problems)
    reader = _Reader(problems)
    config = reader.gateway(raw)
    if problems:
        raise ConfigError(problems, source)
    return dataclasses.replace(config, source=source)


def _expand_env(value: Any, path: str, problems: list[str]) -> Any:
    """Replace ``${VAR}`` / ``${VAR:-default}`` in every string, recursively."""
    if isinstance(value, str):
        def substitute(match: re.Match) -> str:
            name, default = match.group(1), match.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            problems.append(f"{path or '<top>'}: environment variable {name} is not set "
                            f"(export it, or write ${{{name}:-default}})")
            return match.group(0)
        return _ENV_REF.sub(substitute, value)
    if isinstance(value, dict):
        return {k: _expand_env(v, _join(path, k), problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, f"{path}[{i}]", problems) for i, v in enumerate(value)]
    return value


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


class _Reader:
    """Turns raw YAML into dataclasses, recording problems instead of raising."""

    TOP_KEYS = {"storage", "trusted_proxies", "services", "blueprints", "consumers",
                "rate_limit_strategy", "on_storage_error", "metrics_allow_ips"}
    POLICY_KEYS = {"auth", "rate_limit", "cache", "cors", "allow_ips", "deny_ips",
                   "max_body_bytes"}
    SERVICE_KEYS = {"upstream", "prefix", "strip_prefix", "methods", "timeout",
                    "retries", "preserve_host", "circuit_breaker"} | POLICY_KEYS
    BLUEPRINT_KEYS = {"blueprint"} | POLICY_KEYS

    def __init__(self, problems: list[str]):
        self.problems = problems

    def fail(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    # -- the hierarchy ---------------------------------------------------------

    def gateway(self, raw: Any) -> GatewayConfig:
        if not isinstance(raw, dict):
            self.fail("<top>", f"expected a mapping of settings, got {_kind(raw)}")
            return GatewayConfig(services={})
        self.unknown_keys(raw, self.TOP_KEYS, "")
        storage = self.string(raw, "storage", "", "memory://")
        if not re.match(r"^(memory|redis|rediss|redis\+sentinel|redis\+cluster)://", storage):
            self.fail("storage", f"{storage!r} is not a storage URI "
                      "(expected memory:// or redis://host:port/db)")
        trusted = self.integer(raw, "trusted_proxies", "", 0, minimum=0)
        services_raw = raw.get("services")
        services: dict[str, ServiceConfig] = {}
        if not isinstance(services_raw, dict) or not services_raw:
            self.fail("services", "expected a mapping of at least one service name to its "
                      "settings, e.g. services: {users: {upstream: http://127.0.0.1:9001}}")
        else:
            for name, svc_raw in services_raw.items():
                service = self.service(str(name), svc_raw)
                if service is not None:
                    services[service.name] = service
            self.check_prefixes(services)
        blueprints = self.blueprints(raw.get("blueprints", []))
        consumers = self.consumers(raw.get("consumers", {}))
        strategy = self.string(raw, "rate_limit_strategy", "", "fixed-window")
        if strategy not in RATE_LIMIT_STRATEGIES:
            self.fail("rate_limit_strategy", f"{strategy!r} is not one of "
                      f"{', '.join(RATE_LIMIT_STRATEGIES)}")
        on_error = self.string(raw, "on_storage_error", "", "allow")
        if on_error not in ("allow", "deny"):
            self.fail("on_storage_error", f"{on_error!r} is not 'allow' (fail open) or 'deny' (503)")
        metrics_allow = self.networks(raw, "metrics_allow_ips", "") if "metrics_allow_ips" in raw \
            else DEFAULT_METRICS_ALLOW
        return GatewayConfig(services=services, storage=storage, trusted_proxies=trusted,
                             blueprints=blueprints, consumers=consumers,
                             rate_limit_strategy=strategy, on_storage_error=on_error,
                             metrics_allow_ips=metrics_allow)

    def blueprints(self, raw: Any) -> tuple[BlueprintConfig, ...]:
        if not isinstance(raw, list):
            self.fail("blueprints", f"expected a list of 'package.module:name', got {_kind(raw)}")
            return ()
        result = []
        for i, item in enumerate(raw):
            path = f"blueprints[{i}]"
            if isinstance(item, dict):
                self.unknown_keys(item, self.BLUEPRINT_KEYS, path)
                ref = self.string(item, "blueprint", path, "")
                policies = self.policies(item, path)
            elif isinstance(item, str):
                ref, policies = item, Policies()
            else:
                self.fail(path, f"expected 'package.module:name' or a mapping with 'blueprint', "
                          f"got {_kind(item)}")
                continue
            if not _BLUEPRINT_REF.match(ref):
                self.fail(path if isinstance(item, str) else f"{path}.blueprint",
                          f"{ref!r} is not of the form 'package.module:name'")
            result.append(BlueprintConfig(ref=ref, policies=policies))
        return tuple(result)

    def consumers(self, raw: Any) -> dict[str, ConsumerConfig]:
        if not isinstance(raw, dict):
            self.fail("consumers", f"expected a mapping of consumer names, got {_kind(raw)}")
            return {}
        consumers: dict[str, ConsumerConfig] = {}
        owner: dict[str, str] = {}
        for name, item in raw.items():
            path = f"consumers.{name}"
            if not isinstance(item, dict):
                self.fail(path, f"expected a mapping with 'keys', got {_kind(item)}")
                continue
            self.unknown_keys(item, {"keys", "rate_limit", "services"}, path)
            keys = self.string_list(item, "keys", path, [])
            if not keys:
                self.fail(f"{path}.keys", "expected at least one key (write its sha256: form; "
                          "`gateway hash-key` prints it)")
            hashes, plain = set(), 0
            for i, key in enumerate(keys):
                if key.startswith("sha256:"):
                    if not _KEY_HASH.match(key.lower()):
                        self.fail(f"{path}.keys[{i}]", "a hashed key is 'sha256:' and 64 hex digits")
                        continue
                    hashed = key.lower()
                else:
                    hashed, plain = hash_key(key), plain + 1
                if hashed in owner:
                    self.fail(f"{path}.keys[{i}]", f"the same key belongs to consumer "
                              f"{owner[hashed]!r}; a key identifies one consumer")
                owner[hashed] = str(name)
                hashes.add(hashed)
            allowed = None
            if "services" in item:
                allowed = self.string_list(item, "services", path, [])
            consumers[str(name)] = ConsumerConfig(
                name=str(name), key_hashes=frozenset(hashes),
                rate_limit=self.rate_limit(item, path),
                services=frozenset(allowed) if allowed is not None else None, plain_keys=plain)
        return consumers

    def service(self, name: str, raw: Any) -> ServiceConfig | None:
        path = f"services.{name}"
        if not _SERVICE_NAME.match(name):
            self.fail(path, "a service name starts with a letter and holds only letters, "
                      "digits, '_' and '-'")
            return None
        if isinstance(raw, str):  # shorthand: `users: http://127.0.0.1:9001`
            raw = {"upstream": raw}
        if not isinstance(raw, dict):
            self.fail(path, f"expected a mapping with at least 'upstream', got {_kind(raw)}")
            return None
        self.unknown_keys(raw, self.SERVICE_KEYS, path)
        upstreams = self.upstreams(raw.get("upstream"), f"{path}.upstream")
        prefix = self.string(raw, "prefix", path, f"/{name}")
        if not prefix.startswith("/") or "//" in prefix or "?" in prefix or "#" in prefix:
            self.fail(f"{path}.prefix", f"{prefix!r} is not a path prefix (expected e.g. '/{name}')")
        elif any(seg in (".", "..") for seg in prefix.split("/")):
            self.fail(f"{path}.prefix", f"{prefix!r} must not contain '.' or '..' segments")
        prefix = prefix.rstrip("/") or "/"
        methods = self.string_list(raw, "methods", path, list(ALL_METHODS))
        methods = [m.upper() for m in methods]
        for i, method in enumerate(methods):
            if method not in ALL_METHODS:
                self.fail(f"{path}.methods[{i}]", f"{method!r} is not one of {', '.join(ALL_METHODS)}")
        timeout = self.timeout(raw.get("timeout"), f"{path}.timeout")
        policies = self.policies(raw, path)
        if "circuit_breaker" in raw:
            policies = dataclasses.replace(policies, circuit_breaker=self.breaker(
                raw["circuit_breaker"], f"{path}.circuit_breaker"))
        return ServiceConfig(
            name=name,
            upstreams=upstreams,
            prefix=prefix,
            strip_prefix=self.boolean(raw, "strip_prefix", path, False),
            methods=tuple(dict.fromkeys(methods)),
            timeout=timeout,
            retries=self.integer(raw, "retries", path, DEFAULT_RETRIES, minimum=0, maximum=10),
            preserve_host=self.boolean(raw, "preserve_host", path, False),
            policies=policies,
        )

    def policies(self, raw: dict, path: str) -> Policies:
        """The policy keys shared by services and hand-written blueprints."""
        auth = self.string(raw, "auth", path, "none")
        if auth not in ("none", "api_key"):
            self.fail(f"{path}.auth", f"{auth!r} is not 'none' or 'api_key'")
        max_body = None
        if "max_body_bytes" in raw:
            max_body = self.integer(raw, "max_body_bytes", path, 0, minimum=0)
        return Policies(
            auth=auth,
            rate_limit=self.rate_limit(raw, path),
            cache=self.cache(raw["cache"], f"{path}.cache") if "cache" in raw else None,
            cors=self.cors(raw["cors"], f"{path}.cors") if "cors" in raw else None,
            allow_ips=self.networks(raw, "allow_ips", path),
            deny_ips=self.networks(raw, "deny_ips", path),
            max_body_bytes=max_body,
        )

    def rate_limit(self, raw: dict, path: str) -> str | None:
        if "rate_limit" not in raw:
            return None
        value = self.string(raw, "rate_limit", path, "")
        try:
            parse_many(value)
        except ValueError:
            self.fail(f"{path}.rate_limit", f"{value!r} is not a rate limit (expected e.g. "
                      "'100/minute' or '10/second;500/hour')")
            return None
        return value

    def cache(self, raw: Any, path: str) -> CacheConfig | None:
        if not isinstance(raw, dict):
            self.fail(path, f"expected {{ttl: seconds}}, got {_kind(raw)}")
            return None
        self.unknown_keys(raw, {"ttl", "statuses", "max_body_bytes"}, path)
        if "ttl" not in raw:
            self.fail(f"{path}.ttl", "is required: how many seconds an answer may be served from cache")
        statuses = raw.get("statuses", sorted(DEFAULT_CACHE_STATUSES))
        if not isinstance(statuses, list) or not all(
                isinstance(c, int) and 100 <= c <= 599 for c in statuses):
            self.fail(f"{path}.statuses", "expected a list of HTTP status codes")
            statuses = DEFAULT_CACHE_STATUSES
        return CacheConfig(ttl=self.number(raw, "ttl", path, 1.0),
                           statuses=frozenset(statuses),
                           max_body_bytes=self.integer(raw, "max_body_bytes", path,
                                                       DEFAULT_CACHE_MAX_BODY, minimum=0))

    def breaker(self, raw: Any, path: str) -> BreakerConfig | None:
        if not isinstance(raw, dict):
            self.fail(path, f"expected {{failures: N, reset_after: seconds}}, got {_kind(raw)}")
            return None
        self.unknown_keys(raw, {"failures", "reset_after"}, path)
        return BreakerConfig(failures=self.integer(raw, "failures", path, 5, minimum=1),
                             reset_after=self.number(raw, "reset_after", path, 30.0))

    def cors(self, raw: Any, path: str) -> CorsConfig | None:
        if not isinstance(raw, dict):
            self.fail(path, f"expected {{origins: [...]}}, got {_kind(raw)}")
            return None
        self.unknown_keys(raw, {"origins", "methods", "headers", "expose_headers",
                                "credentials", "max_age"}, path)
        origins = self.string_list(raw, "origins", path, [])
        if not origins:
            self.fail(f"{path}.origins", "expected at least one origin, e.g. "
                      "['https://app.example.com'] (or ['*'])")
        for i, origin in enumerate(origins):
            if origin != "*" and not re.match(r"^https?://[^/\s]+$", origin):
                self.fail(f"{path}.origins[{i}]", f"{origin!r} is not an origin "
                          "(scheme://host[:port], no path)")
        credentials = self.boolean(raw, "credentials", path, False)
        if credentials and "*" in origins:
            self.fail(f"{path}.credentials", "browsers refuse credentials with origin '*': "
                      "list the origins instead")
        methods = [m.upper() for m in self.string_list(raw, "methods", path, [])] or None
        headers = self.string_list(raw, "headers", path, []) or None
        return CorsConfig(origins=tuple(o.rstrip("/") for o in origins),
                          methods=tuple(methods) if methods else None,
                          headers=tuple(headers) if headers else None,
                          expose_headers=tuple(self.string_list(raw, "expose_headers", path, [])),
                          credentials=credentials,
                          max_age=self.integer(raw, "max_age", path, 600, minimum=0))

    def networks(self, raw: dict, key: str, path: str) -> tuple[IPNetwork, ...]:
        result = []
        for i, value in enumerate(self.string_list(raw, key, path, [])):
            try:
                result.append(ipaddress.ip_network(value, strict=False))
            except ValueError:
                self.fail(f"{_join(path, key)}[{i}]", f"{value!r} is not an IP address or "
                          "CIDR range (e.g. 10.0.0.0/8)")
        return tuple(result)

    def upstreams(self, raw: Any, path: str) -> tuple[str, ...]:
        if raw is None:
            self.fail(path, "is required: the backend's base URL, e.g. http://127.0.0.1:9001, "
                      "or a list of them")
            return ()
        items = raw if isinstance(raw, list) else [raw]
        if not items:
            self.fail(path, "expected at least one URL")
        urls = []
        for i, url in enumerate(items):
            where = f"{path}[{i}]" if isinstance(raw, list) else path
            if not isinstance(url, str):
                self.fail(where, f"expected an http(s) URL, got {_kind(url)}")
                continue
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                self.fail(where, f"{url!r} is not an http(s) URL")
            elif parts.query or parts.fragment or parts.username:
                self.fail(where, f"{url!r} must be scheme://host[:port][/base-path] "
                          "without query, fragment or credentials")
            else:
                try:
                    parts.port
                except ValueError:
                    self.fail(where, f"{url!r} has an invalid port")
                    continue
                urls.append(url.rstrip("/"))
        return tuple(urls)

    def timeout(self, raw: Any, path: str) -> Timeout:
        if raw is None:
            return Timeout()
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            raw = {"connect": min(float(raw), DEFAULT_CONNECT_TIMEOUT), "read": raw}
        if not isinstance(raw, dict):
            self.fail(path, f"expected {{connect: seconds, read: seconds}}, got {_kind(raw)}")
            return Timeout()
        self.unknown_keys(raw, {"connect", "read"}, path)
        return Timeout(connect=self.number(raw, "connect", path, DEFAULT_CONNECT_TIMEOUT),
                       read=self.number(raw, "read", path, DEFAULT_READ_TIMEOUT))

    def check_prefixes(self, services: dict[str, ServiceConfig]) -> None:
        seen: dict[str, str] = {}
        for service in services.values():
            if service.prefix in seen:
                self.fail(f"services.{service.name}.prefix",
                          f"{service.prefix!r} is already the prefix of service "
                          f"{seen[service.prefix]!r}; give each service its own prefix")
            seen[service.prefix] = service.name
            if service.prefix in RESERVED_PATHS:
                self.fail(f"services.{service.name}.prefix",
                          f"{service.prefix} is served by the gateway itself; choose another prefix")

    # -- scalar readers --------------------------------------------------------

    def unknown_keys(self, raw: dict, known: set[str], path: str) -> None:
        for key in raw:
            if key not in known:
                hint = difflib.get_close_matches(str(key), sorted(known), n=1)
                suggestion = f"; did you mean {hint[0]!r}?" if hint else \
                    f"; known keys: {', '.join(sorted(known))}"
                self.fail(_join(path, key), f"unknown key{suggestion}")

    def string(self, raw: dict, key: str, path: str, default: str) -> str:
        value = raw.get(key, default)
        if not isinstance(value, str):
            self.fail(_join(path, key), f"expected a string, got {_kind(value)}")
            return default
        return value

    def string_list(self, raw: dict, key: str, path: str, default: list[str]) -> list[str]:
        value = raw.get(key, default)
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(_join(path, key), f"expected a list of strings, got {_kind(value)}")
            return default
        return value

    def boolean(self, raw: dict, key: str, path: str, default: bool) -> bool:
        value = raw.get(key, default)
        if not isinstance(value, bool):
            self.fail(_join(path, key), f"expected true or false, got {value!r}")
            return default
        return value

    def integer(self, raw: dict, key: str, path: str, default: int,
                minimum: int | None = None, maximum: int | None = None) -> int:
        value = raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(_join(path, key), f"expected a whole number, got {value!r}")
            return default
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            bounds = f"from {minimum}" + (f" to {maximum}" if maximum is not None else " up")
            self.fail(_join(path, key), f"{value} is out of range (expected {bounds})")
            return default
        return value

    def number(self, raw: dict, key: str, path: str, default: float) -> float:
        value = raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            self.fail(_join(path, key), f"expected a positive number of seconds, got {value!r}")
            return default
        return float(value)


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)
