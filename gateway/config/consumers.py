"""``consumers:``: the clients of the gateway and their API keys.

Keys are held only as ``sha256:<hex>`` hashes; a key written in plain text is
hashed at load (``gateway check`` warns about it).
"""

from __future__ import annotations

import hashlib
import re
from typing import Annotated, Any

from pydantic import AfterValidator, Field, PrivateAttr, field_validator, model_validator

from .plans import Quota
from .types import RateLimit, Section, fail

_KEY_HASH = re.compile(r"^sha256:[0-9a-f]{64}$")


def hash_key(key: str) -> str:
    """The form API keys are stored and compared in: ``sha256:<hex>``."""
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def _key(key: str) -> str:
    """Every key is kept in its hashed form only, whatever the file says."""
    if not key.startswith("sha256:"):
        return hash_key(key)
    if not _KEY_HASH.match(key.lower()):
        raise fail("a hashed key is 'sha256:' and 64 hex digits")
    return key.lower()


class ConsumerConfig(Section):
    """A client of the gateway, known by one or more API keys."""

    #: held as ``sha256:`` hashes only, whatever the file says
    keys: list[Annotated[str, AfterValidator(_key)]] = Field(
        description="the sha256: form of each key (`gateway hash-key`)")
    rate_limit: RateLimit | None = Field(None, description="across every route, on top of each "
                                                           "route's own limit")
    services: list[str] | None = Field(None, description="allow-list of services and blueprints")
    plan: str | None = Field(None, description="a name under plans:; the consumer's own "
                             "rate_limit, quota and services replace the plan's")
    quota: Quota | None = Field(None, description="requests per calendar period across every "
                                "service: N/month or N/day (UTC)")

    _name: str = PrivateAttr("")
    _plain_keys: int = PrivateAttr(0)

    @model_validator(mode="wrap")
    @classmethod
    def _count_plain(cls, value: Any, handler):
        consumer = handler(value)
        keys = value.get("keys") if isinstance(value, dict) else None
        if isinstance(keys, list):
            consumer._plain_keys = sum(isinstance(k, str) and not k.startswith("sha256:")
                                       for k in keys)
        return consumer

    @field_validator("keys")
    @classmethod
    def _keys(cls, keys: list[str]) -> list[str]:
        if not keys:
            raise fail("expected at least one key (write its sha256: form; "
                       "`gateway hash-key` prints it)")
        return keys

    @property
    def name(self) -> str:
        return self._name

    @property
    def key_hashes(self) -> frozenset[str]:
        return frozenset(self.keys)

    @property
    def plain_keys(self) -> int:
        """How many keys the file held in plain text (``gateway check`` warns)."""
        return self._plain_keys
