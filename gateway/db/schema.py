"""The tables, in SQLAlchemy Core: one definition for SQLite and PostgreSQL.

Times are stored as UTC and come back timezone-aware (SQLite keeps no zone).
``revision`` is one row: every change adds one to it in its own transaction,
and stamps its audit record with the new value; on PostgreSQL the row's lock
makes changes commit in revision order, so a worker that has read revision N
has seen every change up to N.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)

from ..usage.tally import COUNTS


class UtcDateTime(TypeDecorator):
    """A timezone-aware UTC datetime in, the same out, on every database."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is not None:
            value = value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    return datetime.now(UTC)


metadata = MetaData()

consumers = Table(
    "gateway_consumers", metadata,
    Column("name", String(200), primary_key=True),
    Column("rate_limit", String(100), nullable=True),
    Column("services", JSON, nullable=True),
    Column("meta", JSON, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("plan", String(200), nullable=True),
    Column("quota", String(40), nullable=True),
)

keys = Table(
    "gateway_keys", metadata,
    Column("id", String(40), primary_key=True),
    Column("consumer", String(200), ForeignKey("gateway_consumers.name"), nullable=False),
    Column("hash", String(64), nullable=False, unique=True),
    Column("label", Text, nullable=True),
    Column("hint", String(100), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=True),
    Column("revoked_at", UtcDateTime, nullable=True),
    Column("last_used_at", UtcDateTime, nullable=True),
    Index("ix_gateway_keys_consumer", "consumer"),
)

audit = Table(
    "gateway_audit", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(40), nullable=False),
    Column("consumer", String(200), nullable=True),
    Column("key_id", String(40), nullable=True),
    Column("revision", BigInteger, nullable=False),
    Index("ix_gateway_audit_at", "at"),
    Index("ix_gateway_audit_revision", "revision"),
)

revision = Table(
    "gateway_revision", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("value", BigInteger, nullable=False),
)

#: Usage per consumer, service and hour: gateway/usage/tally.py's counts, one column each
#: (latency_le_5 ... latency_le_10000, latency_over: the histogram), added to by every
#: worker's flush (gateway/db/usage.py).
usage = Table(
    "gateway_usage", metadata,
    Column("consumer", String(200), primary_key=True),
    Column("service", String(200), primary_key=True),
    Column("hour", UtcDateTime, primary_key=True),
    *(Column(name, BigInteger, nullable=False, default=0) for name in COUNTS),
    Index("ix_gateway_usage_hour", "hour"),
)
