"""The usage table: every worker's flush added to it, and the report read from it.

A flush is one transaction: each row is inserted, or added to the row already
there (``ON CONFLICT ... DO UPDATE SET n = n + excluded.n``, on SQLite and
PostgreSQL alike), in key order so that two hosts flushing the same rows at
once never deadlock. The report groups the hours by day or month and reads
p50/p95 from the summed histograms (gateway/usage/tally.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine

from ..usage.tally import ANONYMOUS, COUNTS, LATENCY_COLUMNS, Key, percentile
from .records import BadParameter, iso
from .schema import usage

#: The fields of a report row, in order (``gateway usage``'s CSV columns).
FIELDS = ("consumer", "service", "period_start", "requests", "status_2xx", "status_3xx",
          "status_4xx", "status_5xx", "status_429", "bytes_in", "bytes_out", "latency_p50_ms",
          "latency_p95_ms")
PERIODS = ("hour", "day", "month")


def usage_writer(engine: Engine):
    """A :class:`~gateway.usage.Outbox`'s ``write`` into ``engine``'s usage table."""
    insert = sqlite_insert if engine.dialect.name == "sqlite" else postgresql_insert
    adding = insert(usage)
    statement = adding.on_conflict_do_update(
        index_elements=["consumer", "service", "hour"],
        set_={name: usage.c[name] + adding.excluded[name] for name in COUNTS})

    def write(rows: Mapping[Key, list[int]]) -> None:
        ordered = sorted(rows.items())
        with engine.begin() as connection:
            # one statement, its rows as an executemany (compiled once, cached)
            connection.execute(statement, [
                {"consumer": consumer, "service": service,
                 "hour": datetime.fromtimestamp(hour, UTC),
                 **dict(zip(COUNTS, counts, strict=True))}
                for (consumer, service, hour), counts in ordered])
    return write


def period_start(hour: datetime, by: str) -> datetime:
    if by == "day":
        return hour.replace(hour=0)
    if by == "month":
        return hour.replace(day=1, hour=0)
    return hour


class UsageQuery(NamedTuple):
    """What ``gateway usage`` and the Admin API's ``GET /usage`` ask for."""

    start: datetime
    end: datetime | None
    consumer: str | None
    service: str | None
    by: str


def report(engine: Engine, asked: UsageQuery) -> list[dict[str, Any]]:
    """One row per consumer × service × period (``hour``, ``day`` or ``month``) from
    ``start`` (inclusive) to ``end`` (exclusive), ordered by period, consumer, service."""
    start, end, consumer, service, by = asked
    query = select(usage).where(usage.c.hour >= start)
    if end is not None:
        query = query.where(usage.c.hour < end)
    if consumer is not None:
        query = query.where(usage.c.consumer == consumer)
    if service is not None:
        query = query.where(usage.c.service == service)
    groups: dict[tuple[datetime, str, str], list[int]] = {}
    with engine.connect() as connection:
        for row in connection.execute(query).mappings():
            key = (period_start(row["hour"], by), row["consumer"], row["service"])
            total = groups.setdefault(key, [0] * len(COUNTS))
            for i, name in enumerate(COUNTS):
                total[i] += row[name]
    rows = []
    histogram = slice(COUNTS.index(LATENCY_COLUMNS[0]), len(COUNTS))
    for (when, who, what), total in sorted(groups.items()):
        counts = dict(zip(COUNTS, total, strict=True))
        rows.append({"consumer": who, "service": what, "period_start": iso(when),
                     **{name: counts[name] for name in FIELDS[3:11]},
                     "latency_p50_ms": percentile(total[histogram], 0.5),
                     "latency_p95_ms": percentile(total[histogram], 0.95)})
    return rows


def usage_query(given: Mapping[str, str | None], now: datetime) -> UsageQuery:
    """``from``, ``to`` (a UTC date or an ISO-8601 time), ``consumer``, ``service`` and
    ``by`` read and checked; ``from`` defaults to the start of the current month (UTC).

    :raises BadParameter: naming the parameter and what it takes.
    """
    by = given.get("by") or "day"
    if by not in PERIODS:
        raise BadParameter(f"by: {by!r} is not one of hour, day, month", "by")
    start = _time(given.get("from"), "from") or now.astimezone(UTC).replace(
        day=1, hour=0, minute=0, second=0, microsecond=0)
    end = _time(given.get("to"), "to")
    if end is not None and end <= start:
        raise BadParameter(f"to: {iso(end)} is not after from ({iso(start)})", "to")
    return UsageQuery(start, end, given.get("consumer") or None, given.get("service") or None,
                      by)


def _time(text: str | None, name: str) -> datetime | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadParameter(f"{name}: {text!r} is neither a date (2026-12-01) nor an ISO-8601 "
                           "time (2026-12-01T00:00:00Z)", name) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def busiest(engine: Engine, since: datetime, limit: int = 10) -> list[dict[str, Any]]:
    """The consumers with the most requests in the hours from ``since``: requests, and the
    share of them answered 4xx or 5xx (``anonymous`` left out)."""
    total = func.sum(usage.c.requests)
    errors = func.sum(usage.c.status_4xx) + func.sum(usage.c.status_5xx)
    query = (select(usage.c.consumer, total.label("requests"), errors.label("errors"))
             .where(usage.c.hour >= since, usage.c.consumer != ANONYMOUS)
             .group_by(usage.c.consumer).order_by(total.desc(), usage.c.consumer).limit(limit))
    with engine.connect() as connection:
        return [{"consumer": row.consumer, "requests": int(row.requests),
                 "error_share": round(int(row.errors) / int(row.requests), 3)
                 if row.requests else 0.0}
                for row in connection.execute(query)]


def active_since(engine: Engine, since: datetime, limit: int = 500) -> list[str]:
    """The consumers with the most requests since ``since`` (the ones whose allowance the
    status page looks at)."""
    total = func.sum(usage.c.requests)
    query = (select(usage.c.consumer).where(usage.c.hour >= since,
                                            usage.c.consumer != ANONYMOUS)
             .group_by(usage.c.consumer).order_by(total.desc()).limit(limit))
    with engine.connect() as connection:
        return list(connection.execute(query).scalars())
