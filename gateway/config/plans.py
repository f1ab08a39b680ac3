"""``plans:``: what a consumer may do, by name (``free``, ``pro``), and its allowance;
``usage:``: how the usage it makes is recorded.

A plan gives a ``rate_limit`` (windows of seconds to hours, as everywhere), a
``quota`` (an allowance per calendar period in UTC: ``10000/month`` or
``500/day``) and a ``services`` allow-list. A consumer names at most one plan;
whatever the consumer sets itself replaces the plan's value of that key.
"""

from __future__ import annotations

import re
from typing import Annotated, NamedTuple

from pydantic import AfterValidator, Field

from .types import RateLimit, Seconds, Section, fail

_ALLOWANCE = re.compile(r"^\s*([0-9]+)\s*/\s*(month|day)\s*$")
#: the periods an allowance may be counted in (calendar periods, UTC)
PERIODS = ("month", "day")


class Allowance(NamedTuple):
    """``10000/month`` read: the number of requests and the calendar period."""

    amount: int
    period: str

    @classmethod
    def parse(cls, text: str) -> Allowance:
        match = _ALLOWANCE.match(text)
        if match is None or int(match.group(1)) < 1:
            raise ValueError(text)
        return cls(int(match.group(1)), match.group(2))

    def __str__(self) -> str:
        return f"{self.amount}/{self.period}"


def _quota(value: str) -> str:
    try:
        return str(Allowance.parse(value))
    except ValueError:
        raise fail(f"{value!r} is not an allowance: expected N/month or N/day with N at "
                   "least 1 (e.g. 10000/month; months and days in UTC)") from None


#: ``N/month`` or ``N/day``, normalised (``10000/month``).
Quota = Annotated[str, AfterValidator(_quota)]


class PlanConfig(Section):
    """A named set of limits that consumers take by naming it."""

    rate_limit: RateLimit | None = Field(None, description="across every route, on top of "
                                         "each route's own limit")
    quota: Quota | None = Field(None, description="requests per calendar period across every "
                                "service: N/month or N/day (UTC)")
    services: list[str] | None = Field(None, description="allow-list of services and blueprints")


class UsageConfig(Section):
    """``usage: {flush_seconds: 5}``: how often each worker writes the usage it counted."""

    enabled: bool = Field(True, description="count usage per consumer, service and hour "
                          "(false: no usage records, and /_gateway/usage lists no services)")
    flush_seconds: Seconds = Field(5.0, description="seconds between two writes of a worker's "
                                   "usage records (a killed worker loses at most this much)")
