"""The chain: steps in one declared order, the first answer ends it, afters in reverse."""

from __future__ import annotations

import pytest
from flask import Response

from gateway.config import parse_config
from gateway.policies import ORDER, Chain, Policy, steps_for


class Stub(Policy):
    def __init__(self, step: str, seen: list, answer: Response | None = None):
        self.step, self.seen, self.answer = step, seen, answer

    def before(self):
        self.seen.append(f"before {self.step}")
        return self.answer

    def after(self, response):
        self.seen.append(f"after {self.step}")
        return response


def test_befores_in_order_afters_in_reverse_and_the_first_answer_ends_it():
    seen: list[str] = []
    refused = Response("no", status=403)
    chain = Chain((Stub("cors", seen), Stub("authentication", seen, refused),
                   Stub("quota", seen)))
    assert chain.before() is refused
    chain.after(refused)
    assert seen == ["before cors", "before authentication",
                    "after quota", "after authentication", "after cors"]


def test_a_chain_out_of_order_is_refused_when_built():
    with pytest.raises(ValueError, match="must follow"):
        Chain((Stub("quota", []), Stub("authentication", [])))


CONFIG = parse_config({
    "consumers": {"web": {"keys": ["web-key"], "rate_limit": "10/minute"}},
    "services": {
        "full": {"upstream": "http://x", "cors": {"origins": ["https://a.example"]},
                 "allow_ips": ["127.0.0.1"], "max_body_bytes": 10, "auth": "api_key",
                 "cache": {"ttl": 5}, "transform": {"request": {"headers": {"add": {"A": "b"}}}},
                 "canary": {"upstream": "http://y", "weight": 5},
                 "openapi": "/openapi.json", "validate": True},
        "keyed": {"upstream": "http://x", "auth": "api_key"},   # the consumer's quota applies
        "plain": "http://x"},
    "aggregates": [{"path": "/agg", "calls": {"f": {"service": "full", "path": "/"}}}]})


@pytest.mark.parametrize("kind,route,steps", [
    ("service", CONFIG.services["full"], ORDER[:-1]),
    ("service", CONFIG.services["keyed"],
     ("request-id", "path-check", "authentication", "quota", "upstream")),
    ("service", CONFIG.services["plain"], ("request-id", "path-check", "upstream")),
    ("aggregate", CONFIG.aggregates[0], ("request-id", "transform", "upstream")),
])
def test_a_routes_steps_follow_from_its_config(kind, route, steps):
    assert steps_for(kind, route, CONFIG) == steps
