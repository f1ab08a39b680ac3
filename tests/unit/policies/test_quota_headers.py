"""Which window the ``RateLimit-*`` headers report: the one closest to running out,
or the one that refused (limits' memory storage, a moved clock)."""

from __future__ import annotations

import pytest
from flask import Flask, Response, g
from limits.storage import MemoryStorage

from gateway.config import parse_config
from gateway.errors import GatewayError
from gateway.policies.quota import Quota, Quotas
from gateway.state import RequestState

pytestmark = pytest.mark.unit
APP = Flask(__name__)


def quota(rate_limit: str, consumers: dict | None = None) -> Quota:
    config = parse_config({"consumers": consumers or {}, "services": {
        "u": {"upstream": "http://127.0.0.1:9", "rate_limit": rate_limit}}})
    return Quota(Quotas(config, MemoryStorage()), "u", rate_limit)


def ask(step: Quota, consumer: str | None = None) -> tuple[int, dict]:
    with APP.test_request_context("/u/1", environ_base={"REMOTE_ADDR": "10.0.0.1"}):
        g._gateway_state = RequestState(request_id="r", started=0.0, consumer=consumer)
        try:
            step.before()
            response = Response("ok")
        except GatewayError as refused:
            response = Response("no", status=refused.status)
        response = step.after(response)
        return response.status_code, {k: v for k, v in response.headers.items()
                                      if k.startswith("RateLimit")}


def test_the_window_with_the_fewest_left_is_reported():
    step = quota("2/second;5/hour")
    status, headers = ask(step)
    assert status == 200 and (headers["RateLimit-Limit"], headers["RateLimit-Remaining"]) \
        == ("2", "1")  # 1 left of 2/second, 4 of 5/hour


def test_the_window_that_refused_is_reported_with_nothing_left():
    step = quota("10/minute;3/hour")
    assert [ask(step)[0] for _ in range(3)] == [200, 200, 200]
    status, headers = ask(step)
    assert status == 429
    assert (headers["RateLimit-Limit"], headers["RateLimit-Remaining"]) == ("3", "0")


def test_a_consumers_own_limit_counts_on_top_of_the_routes():
    step = quota("10/minute", consumers={"alice": {"keys": ["k"], "rate_limit": "2/minute"}})
    assert [ask(step, "alice")[0] for _ in range(3)] == [200, 200, 429]
    status, headers = ask(step, "bob")  # another caller: the route's window only
    assert status == 200 and headers["RateLimit-Limit"] == "10"
