"""``database:``, ``keys:`` and ``admin:``: consumers and keys managed at runtime.

``database`` is a URL: ``sqlite:///gateway.db`` (one host; relative to the
config file's directory) or ``postgresql://user:password@host:port/dbname``
(several hosts). ``keys`` is the form of the keys the gateway issues;
``admin`` the Admin API's listener and its bearer tokens (named, stored as
hashes like API keys).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

from .consumers import _key
from .types import Section, fail

_DATABASE = re.compile(r"^(sqlite:///.+|postgres(ql)?(\+psycopg)?://.+)$")
_LISTEN = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]*):(\d{1,5})$")


def _database(url: str) -> str:
    if not _DATABASE.match(url):
        raise fail(f"{url!r} is not a database URL (expected sqlite:///gateway.db, "
                   "sqlite:////absolute/path.db or postgresql://user:password@host:port/dbname)")
    return url


def _listen(address: str) -> str:
    match = _LISTEN.match(address)
    if not match or not 0 < int(match.group(2)) < 65536:
        raise fail(f"{address!r} is not host:port (e.g. 127.0.0.1:8081)")
    return address


DatabaseUrl = Annotated[str, AfterValidator(_database)]


class KeysConfig(Section):
    """``keys: {prefix: gw}``: how the keys the gateway issues begin."""

    prefix: str = Field("gw", pattern=r"^[A-Za-z0-9]{1,16}$",
                        description="letters and digits before the key's `_` (secret scanners "
                                    "look for it)")


class AdminConfig(Section):
    """``admin:``: the Admin API (consumers, keys, audit) on a listener of its own."""

    listen: Annotated[str, AfterValidator(_listen)] = Field(
        "127.0.0.1:8081", description="host:port `gateway serve` also listens on for the "
        "Admin API (never the public listener); keep it private")
    tokens: dict[str, Annotated[str, AfterValidator(_key)]] = Field(
        description="bearer tokens by name (the name is the audit log's actor), each in "
                    "its sha256: form (`gateway hash-key`)")

    def token_names(self) -> dict[str, str]:
        """Each token's hash -> its name."""
        return {hashed: name for name, hashed in self.tokens.items()}
