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
import os
import re
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import urlsplit

import yaml

#: Where the config file is looked for when ``GATEWAY_CONFIG`` is not set.
DEFAULT_CONFIG_PATH = "./gateway.yaml"
ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
DEFAULT_CONNECT_TIMEOUT = 2.0
DEFAULT_READ_TIMEOUT = 30.0
DEFAULT_RETRIES = 2
#: Paths the gateway serves itself; no service may be mounted over them.
RESERVED_PATHS = ("/healthz", "/readyz", "/metrics")

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_SERVICE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
_BLUEPRINT_REF = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


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


@dataclass(frozen=True)
class GatewayConfig:
    """The whole gateway: shared settings and the services it fronts."""

    services: Mapping[str, ServiceConfig]
    storage: str = "memory://"
    trusted_proxies: int = 0
    blueprints: tuple[str, ...] = ()
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

    TOP_KEYS = {"storage", "trusted_proxies", "services", "blueprints"}
    SERVICE_KEYS = {"upstream", "prefix", "strip_prefix", "methods", "timeout",
                    "retries", "preserve_host"}

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
        blueprints = self.string_list(raw, "blueprints", "", [])
        for i, ref in enumerate(blueprints):
            if not _BLUEPRINT_REF.match(ref):
                self.fail(f"blueprints[{i}]", f"{ref!r} is not of the form 'package.module:name'")
        return GatewayConfig(services=services, storage=storage, trusted_proxies=trusted,
                             blueprints=tuple(blueprints))

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
        return ServiceConfig(
            name=name,
            upstreams=upstreams,
            prefix=prefix,
            strip_prefix=self.boolean(raw, "strip_prefix", path, False),
            methods=tuple(dict.fromkeys(methods)),
            timeout=timeout,
            retries=self.integer(raw, "retries", path, DEFAULT_RETRIES, minimum=0, maximum=10),
            preserve_host=self.boolean(raw, "preserve_host", path, False),
        )

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
