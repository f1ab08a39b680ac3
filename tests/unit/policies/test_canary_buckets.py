"""A canary's buckets: raising the weight only adds consumers to the canary."""

from __future__ import annotations

from gateway.config.canary import CanaryConfig
from gateway.policies.canary import bucket


def on_canary(weight: float, users: list[str]) -> set[str]:
    per_mille = CanaryConfig(upstream="http://127.0.0.1:1", weight=weight).per_mille
    return {user for user in users if bucket("orders", user) < per_mille}


def test_raising_the_weight_keeps_those_already_on_the_canary():
    users = [f"user-{n}" for n in range(2000)]
    five, fifty, hundred = (on_canary(w, users) for w in (5, 50, 100))
    assert five < fifty < hundred == set(users)
    assert 60 <= len(five) <= 140 and 900 <= len(fifty) <= 1100
    assert on_canary(0, users) == set()


def test_each_service_splits_its_own_way():
    users = [f"user-{n}" for n in range(200)]
    assert {u for u in users if bucket("orders", u) < 500} != \
        {u for u in users if bucket("users", u) < 500}
