"""The lease window's arithmetic on a moved clock, against a model of the Redis script.

``GRANT`` (gateway/policies/lease.py) runs in Redis; here a few lines of Python
do what it does, so the worker's side (leases doubling, hits spent locally, a
spent window answered locally until it resets, demand halving at a reset) runs
without a network.
"""

from __future__ import annotations

import math

import pytest
from flask import Flask, g
from limits import parse
from limits.storage import MemoryStorage

from gateway.policies.lease import LEASE_FRACTION, LeasedFixedWindow
from gateway.state import RequestState
from gateway.testing import MovedClock

pytestmark = pytest.mark.unit
APP = Flask(__name__)


class RedisModel:
    """One Redis holding fixed windows, granting leases as the GRANT script does."""

    def __init__(self, clock: MovedClock):
        self.clock, self.counts, self.expires, self.calls = clock, {}, {}, 0

    def __call__(self, keys, args):
        self.calls += 1
        key, (expiry, limit, cost, want, fraction) = keys[0], args
        if self.expires.get(key, 0) <= self.clock.time():
            self.counts.pop(key, None)
        used = self.counts.get(key, 0)
        pttl = int((self.expires.get(key, self.clock.time()) - self.clock.time()) * 1000)
        if limit - used < cost:
            return [0, used, pttl]
        grant = max(cost, min(want, math.floor((limit - used) / fraction)))
        if key not in self.counts:
            self.expires[key] = self.clock.time() + expiry
        self.counts[key] = used + grant
        return [grant, used + grant, int((self.expires[key] - self.clock.time()) * 1000)]


class Storage(MemoryStorage):
    def prefixed_key(self, key: str) -> str:
        return f"LIMITS:{key}"


@pytest.fixture
def setup():
    clock = MovedClock()
    redis = RedisModel(clock)
    window = LeasedFixedWindow(Storage(), clock)  # type: ignore[arg-type]
    window.leases._grant = redis  # type: ignore[assignment]
    return clock, redis, window


def hit(window, item) -> bool:
    with APP.test_request_context("/"):
        g._gateway_state = RequestState(request_id="r", started=0.0)
        return window.hit(item, "gateway", "ip:1", "route:u")


def test_leases_double_with_demand_and_never_over_admit(setup):
    clock, redis, window = setup
    item = parse("6400/minute")
    admitted = sum(hit(window, item) for _ in range(7000))
    assert admitted == 6400  # never more than the limit, however it was leased
    assert redis.calls < 7000 / 20  # batches, not a round trip per hit (224 here)
    assert sum(redis.counts.values()) == 6400


def test_a_lease_is_at_most_a_32nd_of_what_is_left(setup):
    clock, redis, window = setup
    item = parse("320/minute")
    for _ in range(100):
        hit(window, item)
    grants = []
    original = redis.__call__

    def recording(keys, args):
        answer = original(keys, args)
        grants.append((answer[0], 320 - (answer[1] - answer[0])))
        return answer
    window.leases._grant = recording
    for _ in range(200):
        hit(window, item)
    assert grants and all(grant <= max(1, left // LEASE_FRACTION) for grant, left in grants)


def test_a_spent_window_is_refused_locally_until_it_resets(setup):
    clock, redis, window = setup
    item = parse("3/minute")
    assert [hit(window, item) for _ in range(4)] == [True, True, True, False]
    calls = redis.calls
    assert not hit(window, item) and redis.calls == calls  # no round trip for a 429
    clock.advance(60.0)  # the window resets: a new one is asked for
    assert hit(window, item) and redis.calls == calls + 1
