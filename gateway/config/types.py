"""The value types a config file is made of, each validated with a message a person can act on.

Every model derives from :class:`Section`: unknown keys are errors (so a typo
is caught), values are never coerced (``retries: "2"`` is a mistake, not a
2), and a parsed config is immutable. Each constrained value is an
``Annotated`` type here, so its check and its JSON Schema stay together.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from limits import parse_many
from pydantic import AfterValidator, BaseModel, ConfigDict, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_STORAGE = re.compile(r"^(memory|redis|rediss|redis\+sentinel|redis\+cluster)://")
_ORIGIN = re.compile(r"^https?://[^/\s]+$")
_BLUEPRINT_REF = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_ROUTE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


class Section(BaseModel):
    """The base of every part of the config."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def switched_on(value: Any, section: type, keys: str) -> Any:
    """A section that may be given as ``true`` (its defaults) or a mapping of ``keys``."""
    if value is True:
        return {}
    if not isinstance(value, (dict, section)):
        raise fail(f"expected true, false or a mapping ({keys}), got {kind_of(value)}")
    return value


def fail(message: str) -> PydanticCustomError:
    """A validation error whose message is shown to the user as written.

    Without a context pydantic_core does not format the message, so braces in
    it (``{connect: seconds}``) or in a value stay as they are.
    """
    return PydanticCustomError("gateway", message)


def kind_of(value: Any) -> str:
    """How a YAML value is called in messages: 'a list', 'a string', 'nothing'…"""
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)


def _seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise fail(f"expected a positive number of seconds, got {value!r}")
    return float(value)


def _network(value: Any) -> IPNetwork:
    if isinstance(value, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        return value
    try:
        return ipaddress.ip_network(value if isinstance(value, str) else "", strict=False)
    except ValueError:
        raise fail(f"{value!r} is not an IP address or CIDR range (e.g. 10.0.0.0/8)") from None


def _rate_limit(value: str) -> str:
    try:
        parse_many(value)
    except ValueError:
        raise fail(f"{value!r} is not a rate limit (expected e.g. '100/minute' "
                   "or '10/second;500/hour')") from None
    return value


def _target_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise fail(f"{url!r} is not an http(s) URL")
    if parts.query or parts.fragment or parts.username:
        raise fail(f"{url!r} must be scheme://host[:port][/base-path] "
                   "without query, fragment or credentials")
    try:
        _ = parts.port  # urlsplit checks the port only when asked
    except ValueError:
        raise fail(f"{url!r} has an invalid port") from None
    return url.rstrip("/")


def is_redis(uri: str) -> bool:
    """Whether a ``storage`` URI names Redis (shared across workers and hosts)."""
    return uri.startswith(("redis://", "rediss://", "redis+"))


def _storage(uri: str) -> str:
    if not _STORAGE.match(uri):
        raise fail(f"{uri!r} is not a storage URI (expected memory:// or redis://host:port/db)")
    parts = urlsplit(uri)
    if parts.scheme in ("redis+sentinel", "redis+cluster"):
        # several host:port, comma-separated: the sentinels, or the cluster's seed nodes
        form = ("redis+sentinel://host:port[,host:port]/<service-name>"
                if parts.scheme == "redis+sentinel" else "redis+cluster://host:port[,host:port]")
        hosts = parts.netloc.rpartition("@")[2]
        for host in hosts.split(","):
            name, _, port = host.rpartition(":")
            if not name or not port.isdigit() or not 0 < int(port) < 65536:
                raise fail(f"{uri!r}: {host!r} is not host:port (expected {form})")
        if parts.scheme == "redis+sentinel" and not parts.path.strip("/"):
            raise fail(f"{uri!r} names no service after the sentinels (expected {form})")
        return uri
    try:
        _ = parts.port  # urlsplit checks the port only when asked
    except ValueError:
        raise fail(f"{uri!r} has an invalid port (expected redis://host:port/db)") from None
    db = parts.path.strip("/")
    if parts.scheme in ("redis", "rediss") and db and not db.isdigit():
        raise fail(f"{uri!r}: the database after the port is a number (redis://host:port/0)")
    return uri


def _origin(origin: str) -> str:
    if origin != "*" and not _ORIGIN.match(origin):
        raise fail(f"{origin!r} is not an origin (scheme://host[:port], no path)")
    return origin.rstrip("/")


def _blueprint_ref(ref: str) -> str:
    if not _BLUEPRINT_REF.match(ref):
        raise fail(f"{ref!r} is not of the form 'package.module:name'")
    return ref


def _route_name(name: str) -> str:
    if not _ROUTE_NAME.match(name):
        raise fail("a service name starts with a letter and holds only letters, digits, "
                   "'_' and '-'")
    return name


def _method(value: Any) -> str:
    method = value.upper() if isinstance(value, str) else value
    if method not in ALL_METHODS:
        raise fail(f"{value!r} is not one of {', '.join(ALL_METHODS)}")
    return method


ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")

#: A duration in seconds, more than zero.
Seconds = Annotated[float, PlainValidator(_seconds),
                    WithJsonSchema({"type": "number", "exclusiveMinimum": 0})]
#: An IP address or CIDR range; host bits are allowed (10.0.0.1/8 means 10.0.0.0/8).
Network = Annotated[IPNetwork, PlainValidator(_network),
                    WithJsonSchema({"type": "string", "description": "an IP address or CIDR range"})]
RateLimit = Annotated[str, AfterValidator(_rate_limit)]
TargetUrl = Annotated[str, AfterValidator(_target_url)]
StorageUri = Annotated[str, AfterValidator(_storage)]
Origin = Annotated[str, AfterValidator(_origin)]
BlueprintRef = Annotated[str, AfterValidator(_blueprint_ref)]
RouteName = Annotated[str, AfterValidator(_route_name)]
Method = Annotated[str, PlainValidator(_method), WithJsonSchema({"enum": list(ALL_METHODS)})]
Auth = Literal["none", "api_key", "jwt"]


def one_or_many(value: Any, handler, check=None) -> Any:
    """For a list field that also takes one bare string: validate that string
    at the field's own key path (``upstream``, not ``upstream[0]``)."""
    if isinstance(value, str):
        return [check(value) if check else value]
    return handler(value)


#: The JSON Schema of such a field: one string, or a list of them.
def target_urls(value: Any, handler) -> list[str]:
    """An ``upstream`` field: one http(s) URL or a non-empty list of them (a wrap validator's
    body)."""
    if not isinstance(value, (str, list)):
        raise fail(f"expected an http(s) URL or a list of them, got {kind_of(value)}")
    urls = one_or_many(value, handler, _target_url)
    if not urls:
        raise fail("expected at least one URL")
    return urls


def one_or_many_schema(item: dict) -> WithJsonSchema:
    return WithJsonSchema({"anyOf": [item, {"type": "array", "items": item}]})
