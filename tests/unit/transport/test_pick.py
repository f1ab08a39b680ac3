"""Picking a target: round-robin, passing over failed ones and open circuits (no network)."""

from __future__ import annotations

import pytest

from gateway.config import BreakerConfig, ServiceConfig
from gateway.transport import Upstream, UpstreamError
from gateway.transport.breaker import CircuitBreaker, MemoryBreakerState


def upstream(*urls: str, breakers: bool = False) -> Upstream:
    service = ServiceConfig.model_validate({"upstream": list(urls)})
    factory = None
    if breakers:
        state = MemoryBreakerState()
        factory = lambda url: CircuitBreaker(BreakerConfig(failures=1), state, "orders", url)  # noqa: E731
    return Upstream(service, pool_size=2, breaker_factory=factory)


def test_targets_take_turns():
    up = upstream("http://10.0.0.1", "http://10.0.0.2", "http://10.0.0.3")
    picked = [up.pick()[0].url for _ in range(6)]
    assert picked == ["http://10.0.0.1", "http://10.0.0.2", "http://10.0.0.3"] * 2


def test_a_target_that_just_failed_is_passed_over_while_others_are_healthy():
    up = upstream("http://10.0.0.1", "http://10.0.0.2")
    up.targets[0].mark_failed()
    assert {up.pick()[0].url for _ in range(4)} == {"http://10.0.0.2"}


def test_a_retry_goes_to_another_target():
    up = upstream("http://10.0.0.1", "http://10.0.0.2")
    first, _ = up.pick()
    assert up.pick(exclude=[first])[0] is not first


def test_every_circuit_open_is_503_with_retry_after():
    up = upstream("http://10.0.0.1", "http://10.0.0.2", breakers=True)
    for target in up.targets:
        assert target.breaker is not None
        target.breaker.record(False, True)
    with pytest.raises(UpstreamError) as refused:
        up.pick()
    assert refused.value.status == 503 and refused.value.code == "upstream_unavailable"
    assert int(refused.value.headers["Retry-After"]) >= 1
