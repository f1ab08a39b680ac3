"""The keys a worker knows, by their hash: what ``auth: api_key`` asks.

One dict from a key's sha256 digest to its entry holds the file's keys and the
database's alike, so a lookup costs the same with 100,000 keys as with 10. (A
dict lookup by hash takes time that depends on the presented key's hash, not
on how much of a real key it shares: with 178 random bits to a key, that says
nothing an attacker can use; the security page says so.) The database's part is
replaced consumer by consumer as :mod:`.follower` sees changes; the file's part
never changes at runtime. An expiry is compared with the clock at each lookup,
so a key stops working the moment it expires, on every worker, with no change
to follow.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Mapping
from typing import NamedTuple

from ..config import ConsumerConfig, GatewayConfig
from ..config.plans import Allowance, PlanConfig
from .issued import IssuedKeys


class ConsumerEntry:
    """A consumer as a request needs it: its name, allow-list, rate limit and allowance,
    its plan's where it sets none of its own."""

    __slots__ = ("from_file", "name", "plan", "quota", "rate_limit", "services")

    def __init__(self, name: str, services: Iterable[str] | None, rate_limit: str | None,
                 from_file: bool = False, plan: str | None = None,
                 quota: Allowance | None = None):
        self.name = name
        self.services = frozenset(services) if services is not None else None
        self.rate_limit = rate_limit
        self.from_file = from_file
        self.plan = plan
        self.quota = quota

    @classmethod
    def of(cls, name: str, plans: Mapping[str, PlanConfig], *, plan: str | None = None,
           services: Iterable[str] | None = None, rate_limit: str | None = None,
           quota: str | None = None, from_file: bool = False) -> ConsumerEntry:
        """The consumer's own settings, each one it leaves unset taken from its plan
        (a plan no longer in gateway.yaml gives nothing: the check refuses that file)."""
        chosen = plans.get(plan) if plan else None
        if chosen is not None:
            services = services if services is not None else chosen.services
            rate_limit = rate_limit or chosen.rate_limit
            quota = quota or chosen.quota
        return cls(name, services, rate_limit, from_file, plan,
                   Allowance.parse(quota) if quota else None)


class KeyEntry(NamedTuple):
    #: the database's id for the key (None for a key written in gateway.yaml)
    key_id: str | None
    consumer: str
    #: seconds since the epoch, or None for a key that never expires
    expires_at: float | None


class Refusal(Exception):
    """A presented key that is not valid; ``reason`` is what the auth failures counter says."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class Directory:
    """Every key a worker accepts, and the consumers they belong to."""

    def __init__(self, file_consumers: Mapping[str, ConsumerConfig] | None = None,
                 issued: IssuedKeys | None = None, clock: Callable[[], float] = time.time,
                 plans: Mapping[str, PlanConfig] | None = None):
        """:param plans: gateway.yaml's plans, which consumers name (file and database)."""
        self.issued = issued or IssuedKeys()
        self.plans = plans or {}
        self._clock = clock
        self.consumers: dict[str, ConsumerEntry] = {}
        self._keys: dict[bytes, KeyEntry] = {}
        #: the database's keys of each database consumer (to replace them on a change): one
        #: key alone, not in a tuple (most consumers have one; 100,000 tuples are 6 MiB)
        self._held: dict[str, bytes | tuple[bytes, ...]] = {}
        #: key id -> when it was last used; taken and written off the request path
        self.used: dict[str, float] = {}
        for name, consumer in (file_consumers or {}).items():
            self.consumers[name] = ConsumerEntry.of(
                name, self.plans, plan=consumer.plan, services=consumer.services,
                rate_limit=consumer.rate_limit, quota=consumer.quota, from_file=True)
            for stored in consumer.key_hashes:
                self._keys[bytes.fromhex(stored.removeprefix("sha256:"))] = \
                    KeyEntry(None, name, None)

    @classmethod
    def of(cls, config: GatewayConfig, clock: Callable[[], float] = time.time) -> Directory:
        """gateway.yaml's consumers, plans and key prefix (the database's join later).

        :param clock: seconds since the epoch, compared with keys' expiry."""
        return cls(config.consumers, IssuedKeys(config.keys.prefix), clock=clock,
                   plans=config.plans)

    def __len__(self) -> int:
        return len(self._keys)

    def find(self, key: str) -> tuple[KeyEntry, ConsumerEntry]:
        """The key's entry and its consumer.

        :raises Refusal: ``bad_checksum`` (a key of the issued form whose checksum does
            not match: refused before any lookup), ``invalid_api_key`` (unknown, expired,
            revoked: one answer for all).
        """
        issued = self.issued
        if key.startswith(issued.prefix) and issued.looks_issued(key) \
                and not issued.checksum_ok(key):
            raise Refusal("bad_checksum")
        entry = self._keys.get(digest(key))
        if entry is None or (entry.expires_at is not None and self._clock() >= entry.expires_at):
            raise Refusal("invalid_api_key")
        consumer = self.consumers.get(entry.consumer)
        if consumer is None:
            raise Refusal("invalid_api_key")
        if entry.key_id is not None:
            self.used[entry.key_id] = self._clock()
        return entry, consumer

    def consumer(self, name: str) -> ConsumerEntry | None:
        return self.consumers.get(name)

    def replace(self, names: Iterable[str], consumers: Iterable[ConsumerEntry],
                keys: Iterable[tuple[bytes, KeyEntry]]) -> None:
        """The database's current view of the consumers ``names``: those missing from
        ``consumers`` were removed, and each keeps exactly the ``keys`` given (a revoked
        key is left out by the caller). File consumers are never touched."""
        given = {c.name: c for c in consumers}
        new_keys: dict[str, list[bytes]] = {}
        for hashed, entry in keys:
            if entry.consumer in given:
                self._keys[hashed] = entry  # added before the stale ones go: no gap
                new_keys.setdefault(entry.consumer, []).append(hashed)
        for name in names:
            current = self.consumers.get(name)
            if current is not None and current.from_file:
                continue
            if name in given:
                self.consumers[name] = given[name]
            else:
                self.consumers.pop(name, None)
            kept = set(new_keys.get(name, ()))
            held = self._held.pop(name, ())
            for hashed in (held,) if isinstance(held, bytes) else held:
                if hashed not in kept:
                    self._keys.pop(hashed, None)
            if kept:
                self._held[name] = kept.pop() if len(kept) == 1 else tuple(kept)
