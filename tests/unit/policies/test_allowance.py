"""Allowances per calendar period on a moved clock: the month's turn without waiting."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.config.plans import Allowance
from gateway.policies.allowance import Allowances, LeasedCounters, period_of
from gateway.testing import MovedClock
from tests.unit.policies.test_lease import RedisModel, Storage

pytestmark = pytest.mark.unit


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_periods_are_calendar_months_and_days_in_utc():
    start, end = period_of(at("2026-12-31T23:59:59"), "month")
    assert (start.isoformat(), end.isoformat()) == ("2026-12-01T00:00:00+00:00",
                                                    "2027-01-01T00:00:00+00:00")
    start, end = period_of(at("2028-02-29T12:00:00"), "month")
    assert (start.day, end.month, end.day) == (1, 3, 1)
    start, end = period_of(at("2026-12-05T07:00:00"), "day")
    assert (start.isoformat(), end.isoformat()) == ("2026-12-05T00:00:00+00:00",
                                                    "2026-12-06T00:00:00+00:00")


def test_a_spent_allowance_is_refused_until_the_month_turns():
    clock = MovedClock(at("2026-12-31T23:59:00"))
    allowances = Allowances(Storage(), clock)  # memory: exact in the process
    monthly = Allowance.parse("3/month")
    spent = [allowances.spend("acme", monthly) for _ in range(4)]
    assert [s.admitted for s in spent] == [True, True, True, False]
    assert [s.remaining for s in spent] == [2, 1, 0, 0]
    assert spent[-1].reset == 60  # seconds to the new year
    assert allowances.used("acme", monthly)[0] == 3
    clock.advance(60)  # 2027-01-01T00:00:00: a new period, from zero
    first = allowances.spend("acme", monthly)
    assert first.admitted and first.remaining == 2
    assert first.reset == 31 * 86400
    assert allowances.used("acme", monthly)[1].isoformat() == "2027-01-01T00:00:00+00:00"


def test_consumers_count_apart_and_a_new_plan_keeps_what_was_used():
    clock = MovedClock(at("2026-12-05T10:00:00"))
    allowances = Allowances(Storage(), clock)
    for _ in range(5):
        allowances.spend("acme", Allowance.parse("10/month"))
    assert allowances.spend("other", Allowance.parse("10/month")).remaining == 9
    # acme moves to a larger plan: the 5 it used this month stay used
    assert allowances.spend("acme", Allowance.parse("1000/month")).remaining == 994


def test_leased_counters_never_over_admit_and_the_key_names_the_period():
    clock = MovedClock(at("2026-12-05T10:00:00"))
    redis = RedisModel(clock)
    counters = LeasedCounters(Storage(), clock)  # type: ignore[arg-type]
    counters.leases._grant = redis  # type: ignore[assignment]
    allowances = Allowances(Storage(), clock)
    allowances.counters = counters
    admitted = sum(allowances.spend("acme", Allowance.parse("1000/month")).admitted
                   for _ in range(1500))
    assert admitted == 1000
    assert list(redis.counts) == ["LIMITS:gateway/allowance/acme/2026-12"]
    assert redis.calls < 1500 / 5  # leases, and refusals answered locally (163 here)
    # the key outlives the period by an hour, no more
    assert redis.expires["LIMITS:gateway/allowance/acme/2026-12"] == \
        at("2027-01-01T00:00:00") + 3600


@pytest.mark.parametrize("text", ["10/week", "0/month", "month", "10/minute", "1.5/day"])
def test_only_n_per_month_or_day_is_an_allowance(text):
    with pytest.raises(ValueError):
        Allowance.parse(text)


def test_per_period_counts_in_memory_add_up_and_forget_periods_that_ended():
    from gateway.policies.allowance import ServiceCounts

    counts = ServiceCounts()
    now = at("2026-12-05T10:30:00")
    counts.write({("acme", "orders", int(now)): [3], ("acme", "users", int(now)): [1],
                  ("anonymous", "orders", int(now)): [7]})
    counts.write({("acme", "orders", int(now)): [2]})
    assert counts.read("acme", "month", now)[1] == {"orders": 5, "users": 1}
    assert counts.read("acme", "day", now + 86400)[1] == {}  # the next day: nothing yet
    assert counts.read("anonymous", "month", now)[1] == {}  # nobody can ask for those
    old = at("2020-01-01T00:00:00")
    counts.write({(f"c{i}", "orders", int(old)): [1] for i in range(1500)})
    assert len(counts._memory) < 100  # 3,000 ended periods forgotten at once
