"""The response cache on a moved clock: TTLs, max-age and Age without sleeping."""

from __future__ import annotations

import pytest
from flask import Flask, Response, g

from gateway.config import CacheConfig
from gateway.policies.cache import MemoryStore, ResponseCache
from gateway.state import RequestState
from gateway.testing import MovedClock

pytestmark = pytest.mark.unit


@pytest.fixture
def clock():
    return MovedClock(1_000_000.0)


@pytest.fixture
def cache(clock):
    return ResponseCache("c", CacheConfig.model_validate({"ttl": 30}), MemoryStore(clock),
                         by_consumer=False, clock=clock)


APP = Flask(__name__)


def ask(cache: ResponseCache, path: str, answer: Response | None = None) -> Response:
    """One GET through the cache step: its answer, or ``answer`` as the upstream's."""
    with APP.test_request_context(path):
        g._gateway_state = RequestState(request_id="r", started=0.0)
        hit = cache.before()
        return cache.after(hit if hit is not None else answer or Response(b"fresh"))


def test_an_entry_is_served_until_its_ttl_then_missed(cache, clock):
    assert ask(cache, "/c/t").headers["X-Cache-Status"] == "MISS"
    clock.advance(29.9)
    hit = ask(cache, "/c/t")
    assert hit.headers["X-Cache-Status"] == "HIT" and hit.headers["Age"] == "29"
    clock.advance(0.2)
    assert ask(cache, "/c/t").headers["X-Cache-Status"] == "MISS"


def test_max_age_shortens_the_ttl(cache, clock):
    ask(cache, "/c/m", Response(b"x", headers={"Cache-Control": "max-age=1"}))
    clock.advance(0.9)
    assert ask(cache, "/c/m").headers["X-Cache-Status"] == "HIT"
    clock.advance(0.2)
    assert ask(cache, "/c/m").headers["X-Cache-Status"] == "MISS"


def test_age_counts_whole_seconds_since_stored(cache, clock):
    ask(cache, "/c/a")
    assert ask(cache, "/c/a").headers["Age"] == "0"
    clock.advance(1.5)
    assert ask(cache, "/c/a").headers["Age"] == "1"
