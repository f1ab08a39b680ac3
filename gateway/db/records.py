"""Every read and change of consumers and keys, as the CLI and the Admin API make them.

A change runs in one transaction with its audit record and one step of the
revision counter (gateway/db/schema.py), so a worker following the counter
sees it whole or not at all. Keys are stored as their sha256 only; the key
itself is returned once, by :meth:`Records.issue_key` and
:meth:`Records.rotate_key`. Consumers written in gateway.yaml are not here:
their names are read-only (:class:`ReadOnly`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection, Engine, RowMapping
from sqlalchemy.exc import IntegrityError

from ..config.plans import Quota
from ..config.types import RateLimit
from ..keyring.issued import IssuedKeys, key_hash, new_key_id
from ..usage import ANONYMOUS
from .schema import audit, consumers, keys, revision, utcnow

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,199}$")


class Refused(Exception):
    """A change or read that cannot be made; ``status`` and ``code`` are the Admin API's."""

    status = 400
    code = "refused"

    def __init__(self, message: str, pointer: str | None = None):
        super().__init__(message)
        self.message = message
        self.pointer = pointer


class NotFound(Refused):
    status, code = 404, "not_found"


class Conflict(Refused):
    status, code = 409, "already_exists"


class ReadOnly(Refused):
    status, code = 409, "read_only"


class Invalid(Refused):
    status, code = 422, "invalid_body"


class BadParameter(Refused):
    """A query parameter that is not what the endpoint takes (``pointer``: its name)."""

    status, code = 400, "bad_request"


class ConsumerFields(BaseModel):
    """A consumer's settable fields (``POST /consumers``, ``consumers add``)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME.pattern)

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, name: str) -> str:
        if name == ANONYMOUS:
            raise ValueError("'anonymous' is reserved (usage records count the requests that "
                             "name no consumer under it); choose another name")
        return name
    plan: str | None = None
    rate_limit: RateLimit | None = None
    quota: Quota | None = None
    services: list[str] | None = None
    metadata: dict[str, str] = {}


class ConsumerChanges(BaseModel):
    """What ``PATCH /consumers/{name}`` may change (a field given as null is unset)."""

    model_config = ConfigDict(extra="forbid")

    plan: str | None = None
    rate_limit: RateLimit | None = None
    quota: Quota | None = None
    services: list[str] | None = None
    metadata: dict[str, str] | None = None


def invalid(error: ValidationError) -> Invalid:
    """The first problem of a body, with its JSON pointer (``/rate_limit``)."""
    first = error.errors()[0]
    pointer = "".join(f"/{part}" for part in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown field"
    elif first["type"] == "string_pattern_mismatch":
        message = "expected letters, digits and . _ @ - (at most 200, starting with a " \
                  "letter or digit)"
    return Invalid(f"{pointer.lstrip('/') or 'body'}: {message}", pointer)


def consumer_view(row: RowMapping) -> dict[str, Any]:
    return {"name": row["name"], "plan": row["plan"], "rate_limit": row["rate_limit"],
            "quota": row["quota"], "services": row["services"],
            "metadata": row["meta"] or {}, "created_at": iso(row["created_at"])}


def key_view(row: RowMapping) -> dict[str, Any]:
    return {"id": row["id"], "consumer": row["consumer"], "label": row["label"],
            "hint": row["hint"], "created_at": iso(row["created_at"]),
            "expires_at": iso(row["expires_at"]), "last_used_at": iso(row["last_used_at"]),
            "revoked_at": iso(row["revoked_at"])}


def iso(moment: datetime | None) -> str | None:
    """ISO-8601 UTC, ``Z``-suffixed, to the second."""
    if moment is None:
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class Records:
    """The consumers, keys and audit log in one database, changed on behalf of ``actor``."""

    def __init__(self, engine: Engine, actor: str, *, read_only: Collection[str] = (),
                 routes: Collection[str] | None = None, issued: IssuedKeys | None = None,
                 clock: Callable[[], datetime] = utcnow, plans: Collection[str] | None = None):
        """:param read_only: the consumers of gateway.yaml (never changed here).
        :param routes: the services and blueprints a consumer's ``services`` may name.
        :param plans: the plans of gateway.yaml a consumer's ``plan`` may name."""
        self.plans = frozenset(plans) if plans is not None else None
        self.engine = engine
        self.actor = actor
        self.read_only = frozenset(read_only)
        self.routes = frozenset(routes) if routes is not None else None
        self.issued = issued or IssuedKeys()
        self.clock = clock

    # -- consumers

    def list_consumers(self) -> list[dict[str, Any]]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(consumers).order_by(consumers.c.name)).mappings()
            return [consumer_view(row) for row in rows]

    def get_consumer(self, name: str) -> dict[str, Any]:
        with self.engine.connect() as connection:
            return consumer_view(self._consumer(connection, name))

    def add_consumer(self, fields: ConsumerFields) -> dict[str, Any]:
        self._writable(fields.name)
        self._check_services(fields.services)
        self._check_plan(fields.plan)
        row = {"name": fields.name, "plan": fields.plan, "rate_limit": fields.rate_limit,
               "quota": fields.quota, "services": fields.services, "meta": fields.metadata,
               "created_at": self.clock()}
        try:
            with self.engine.begin() as connection:
                if connection.execute(select(consumers.c.name).where(
                        consumers.c.name == fields.name)).first() is not None:
                    raise Conflict(f"consumer {fields.name!r} already exists", "/name")
                connection.execute(insert(consumers).values(row))
                self._audit(connection, "consumer.add", fields.name)
        except IntegrityError:  # added meanwhile by another command
            raise Conflict(f"consumer {fields.name!r} already exists", "/name") from None
        return consumer_view(row)  # type: ignore[arg-type]

    def update_consumer(self, name: str, changes: ConsumerChanges) -> dict[str, Any]:
        self._writable(name)
        given = changes.model_dump(exclude_unset=True)
        self._check_services(given.get("services"))
        self._check_plan(given.get("plan"))
        if "metadata" in given:
            given["meta"] = given.pop("metadata") or {}
        with self.engine.begin() as connection:
            self._consumer(connection, name)
            if given:
                connection.execute(update(consumers).where(consumers.c.name == name)
                                   .values(given))
            self._audit(connection, "consumer.update", name)
            return consumer_view(self._consumer(connection, name))

    def remove_consumer(self, name: str) -> None:
        """The consumer and its keys go (its keys stop working)."""
        self._writable(name)
        with self.engine.begin() as connection:
            self._consumer(connection, name)
            connection.execute(delete(keys).where(keys.c.consumer == name))
            connection.execute(delete(consumers).where(consumers.c.name == name))
            self._audit(connection, "consumer.remove", name)

    # -- keys

    def list_keys(self, consumer: str | None = None) -> list[dict[str, Any]]:
        with self.engine.connect() as connection:
            query = select(keys).order_by(keys.c.consumer, keys.c.created_at, keys.c.id)
            if consumer is not None:
                self._writable(consumer)
                self._consumer(connection, consumer)
                query = query.where(keys.c.consumer == consumer)
            return [key_view(row) for row in connection.execute(query).mappings()]

    def issue_key(self, consumer: str, label: str | None = None,
                  expires_at: datetime | None = None) -> dict[str, Any]:
        """A new key for ``consumer``: its record, with ``key`` (shown this once)."""
        self._writable(consumer)
        self._future(expires_at, "/expires_at")
        with self.engine.begin() as connection:
            self._consumer(connection, consumer)
            view = self._insert_key(connection, consumer, label, expires_at)
            self._audit(connection, "key.issue", consumer, view["id"])
        return view

    def revoke_key(self, key_id: str) -> None:
        with self.engine.begin() as connection:
            row = self._key(connection, key_id)
            if row["revoked_at"] is None:
                connection.execute(update(keys).where(keys.c.id == key_id)
                                   .values(revoked_at=self.clock()))
            self._audit(connection, "key.revoke", row["consumer"], key_id)

    def rotate_key(self, key_id: str, grace: timedelta = timedelta(0)) -> dict[str, Any]:
        """A new key for the same consumer (label and expiry kept); the old one works
        until ``grace`` has passed, then is revoked. Returns the new key's record and key."""
        if grace < timedelta(0):
            raise Invalid("grace_seconds: expected 0 or more", "/grace_seconds")
        with self.engine.begin() as connection:
            old = self._key(connection, key_id)
            if old["revoked_at"] is not None:
                raise Conflict(f"key {key_id!r} is revoked: issue a new one instead")
            now = self.clock()
            if old["expires_at"] is not None and old["expires_at"] <= now:
                raise Conflict(f"key {key_id!r} has expired: issue a new one instead")
            expires = old["expires_at"]
            view = self._insert_key(connection, old["consumer"], old["label"], expires)
            ends = now + grace
            if grace:
                # the old key expires when the grace ends (sooner if it already would)
                if expires is None or expires > ends:
                    connection.execute(update(keys).where(keys.c.id == key_id)
                                       .values(expires_at=ends))
            else:
                connection.execute(update(keys).where(keys.c.id == key_id).values(revoked_at=now))
            self._audit(connection, "key.rotate", old["consumer"], view["id"])
        return view

    def touch(self, used: dict[str, datetime]) -> None:
        """Record when keys were last used (no revision: no worker needs to know)."""
        if not used:
            return
        with self.engine.begin() as connection:
            for key_id, moment in used.items():
                connection.execute(update(keys).where(keys.c.id == key_id)
                                   .values(last_used_at=moment))

    # -- the audit log, export and import

    def audit_since(self, since: datetime | None = None) -> list[dict[str, Any]]:
        query = select(audit).order_by(audit.c.id)
        if since is not None:
            query = query.where(audit.c.at >= since)
        with self.engine.connect() as connection:
            return [{"at": iso(row["at"]), "actor": row["actor"], "action": row["action"],
                     "consumer": row["consumer"], "key_id": row["key_id"]}
                    for row in connection.execute(query).mappings()]

    def export(self) -> dict[str, Any]:
        """Every consumer with its keys' hashes: a backup, or a move to another database."""
        with self.engine.connect() as connection:
            by_consumer: dict[str, list[dict[str, Any]]] = {}
            for row in connection.execute(select(keys).order_by(keys.c.created_at,
                                                                keys.c.id)).mappings():
                by_consumer.setdefault(row["consumer"], []).append(
                    {**key_view(row), "hash": f"sha256:{row['hash']}"})
            return {"format": "gateway-export/1", "consumers": [
                {**consumer_view(row), "keys": by_consumer.get(row["name"], [])}
                for row in connection.execute(select(consumers).order_by(consumers.c.name))
                .mappings()]}

    def import_(self, document: Any) -> int:
        """Read back what :meth:`export` wrote; a name that exists refuses it all.

        :returns: how many consumers were imported."""
        entries = _exported_consumers(document)
        with self.engine.begin() as connection:
            names = [entry["name"] for entry in entries]
            clash = sorted(set(names) & self.read_only) or sorted(connection.execute(
                select(consumers.c.name).where(consumers.c.name.in_(names))).scalars())
            if clash:
                raise Conflict(f"consumer(s) {', '.join(map(repr, clash))} already exist: "
                               "nothing was imported")
            for entry in entries:
                self._check_services(entry["services"])
                self._check_plan(entry["plan"])
                connection.execute(insert(consumers).values(
                    name=entry["name"], plan=entry["plan"], rate_limit=entry["rate_limit"],
                    quota=entry["quota"], services=entry["services"], meta=entry["metadata"],
                    created_at=entry["created_at"]))
                for key in entry["keys"]:
                    connection.execute(insert(keys).values(consumer=entry["name"], **key))
                self._audit(connection, "import", entry["name"])
        return len(entries)

    # -- the parts

    def _writable(self, name: str) -> None:
        if name in self.read_only:
            raise ReadOnly(f"consumer {name!r} is written in gateway.yaml: change it there")

    def _check_services(self, services: Iterable[str] | None) -> None:
        if services is None or self.routes is None:
            return
        for index, name in enumerate(services):
            if name not in self.routes:
                raise Invalid(f"services[{index}]: {name!r} is neither a service nor a "
                              f"blueprint (known: {', '.join(sorted(self.routes))})",
                              f"/services/{index}")

    def _check_plan(self, plan: str | None) -> None:
        if plan is None or self.plans is None or plan in self.plans:
            return
        known = ", ".join(sorted(self.plans)) or "none: add plans: to gateway.yaml"
        raise Invalid(f"plan: {plan!r} is not a plan of gateway.yaml (known: {known})", "/plan")

    def _future(self, moment: datetime | None, pointer: str) -> None:
        if moment is not None and moment <= self.clock():
            raise Invalid(f"{pointer.lstrip('/')}: {iso(moment)} is in the past", pointer)

    def _consumer(self, connection: Connection, name: str) -> RowMapping:
        row = connection.execute(select(consumers).where(consumers.c.name == name)) \
            .mappings().first()
        if row is None:
            self._writable(name)
            raise NotFound(f"no consumer named {name!r}")
        return row

    def _key(self, connection: Connection, key_id: str) -> RowMapping:
        row = connection.execute(select(keys).where(keys.c.id == key_id)).mappings().first()
        if row is None:
            raise NotFound(f"no key with id {key_id!r}")
        return row

    def _insert_key(self, connection: Connection, consumer: str, label: str | None,
                    expires_at: datetime | None) -> dict[str, Any]:
        key = self.issued.issue()
        row = {"id": new_key_id(), "consumer": consumer, "hash": key_hash(key),
               "label": label, "hint": self.issued.hint(key),
               "created_at": self.clock(),
               "expires_at": expires_at, "revoked_at": None, "last_used_at": None}
        connection.execute(insert(keys).values(row))
        return {**key_view(row), "key": key}  # type: ignore[arg-type]

    def _audit(self, connection: Connection, action: str, consumer: str | None,
               key_id: str | None = None) -> None:
        # the counter's row lock (PostgreSQL) orders changes: revision N commits after N-1
        connection.execute(update(revision).values(value=revision.c.value + 1))
        number = connection.execute(select(revision.c.value)).scalar_one()
        connection.execute(insert(audit).values(
            at=self.clock(), actor=self.actor, action=action, consumer=consumer,
            key_id=key_id, revision=number))


def _exported_consumers(document: Any) -> list[dict[str, Any]]:
    """The consumers of an export, checked before anything is written."""
    if not isinstance(document, dict) or not isinstance(document.get("consumers"), list):
        raise Invalid("not a gateway export: expected {\"consumers\": [...]} as "
                      "`gateway export` writes it", "")
    entries = []
    for index, entry in enumerate(document["consumers"]):
        where = f"/consumers/{index}"
        try:
            fields = ConsumerFields.model_validate({
                k: entry.get(k) for k in ("name", "plan", "rate_limit", "quota", "services")} | {
                "metadata": entry.get("metadata") or {}})
            created = _when(entry.get("created_at"), f"{where}/created_at")
            keys_ = [_exported_key(key, f"{where}/keys/{i}")
                     for i, key in enumerate(entry.get("keys") or [])]
        except ValidationError as error:
            raise Invalid(f"consumers[{index}]: {invalid(error).message}", where) from None
        except (AttributeError, TypeError):
            raise Invalid(f"consumers[{index}]: expected an object as `gateway export` "
                          "writes it", where) from None
        entries.append({**fields.model_dump(), "created_at": created, "keys": keys_})
    return entries


def _exported_key(key: Any, where: str) -> dict[str, Any]:
    hashed = str(key.get("hash") or "")
    if not re.fullmatch(r"sha256:[0-9a-f]{64}", hashed) or not key.get("id"):
        raise Invalid(f"{where.lstrip('/')}: expected an id and a sha256: hash", where)
    return {"id": key["id"], "hash": hashed.removeprefix("sha256:"), "label": key.get("label"),
            "hint": key.get("hint") or "", "created_at": _when(key.get("created_at"), where),
            "expires_at": _when(key.get("expires_at"), where, optional=True),
            "revoked_at": _when(key.get("revoked_at"), where, optional=True),
            "last_used_at": _when(key.get("last_used_at"), where, optional=True)}


def _when(text: Any, where: str, optional: bool = False) -> datetime | None:
    if text is None and optional:
        return None
    try:
        return datetime.fromisoformat(str(text))
    except ValueError:
        raise Invalid(f"{where.lstrip('/')}: {text!r} is not an ISO-8601 time", where) from None
