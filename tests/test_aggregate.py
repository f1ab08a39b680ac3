"""``aggregates:``: several services' answers in one, against real (and delayed) backends."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from gateway.config import ConfigError, hash_key, parse_config
from tests.backends import shop_backend
from tests.conftest import dead_port

DASHBOARD = {
    "path": "/dashboard/<user_id>",
    "timeout": 5,
    "calls": {
        "user": {"service": "users", "path": "/users/{user_id}"},
        "orders": {"service": "orders", "path": "/orders", "query": {"user_id": "{user_id}"},
                   "select": "items", "default": []},
        "team": {"service": "users", "path": "/teams/{user.team_id}"},
        "products": {"service": "products", "path": "/products", "required": True},
    },
}


@pytest.fixture
def shop(serve):
    """Three backends: users, orders, products."""
    return {name: serve(shop_backend(name)) for name in ("users", "orders", "products")}


def config_for(shop, aggregate=None, **services) -> dict:
    config = {"services": {name: {"upstream": server.url} for name, server in shop.items()},
              "aggregates": [aggregate or DASHBOARD]}
    for name, extra in services.items():
        config["services"][name].update(extra)
    return config


def seen(server) -> list[dict]:
    return server.app.config["SEEN"]


def test_the_dashboard_gathers_three_services(make_gateway, shop):
    gw = make_gateway(config_for(shop))
    answer = requests.get(f"{gw.url}/dashboard/1", headers={"X-Request-ID": "dash-1"})
    assert answer.status_code == 200
    assert answer.headers["X-Gateway-Completed"] == "true"
    assert answer.json() == {
        "user": {"id": 1, "name": "Ada", "team_id": 7},
        "orders": [{"id": 1, "user_id": 1, "total": 30}, {"id": 3, "user_id": 1, "total": 5}],
        "team": {"id": 7, "name": "Engines"},
        "products": [{"id": 1, "name": "Keyboard"}, {"id": 2, "name": "Mouse"}],
    }
    assert [r["path"] for r in seen(shop["orders"])] == ["/orders?user_id=1"]
    assert sorted(r["path"] for r in seen(shop["users"])) == ["/teams/7", "/users/1"]
    # every call carries the client's request id
    for server in shop.values():
        assert {r["headers"]["X-Request-Id"] for r in seen(server)} == {"dash-1"}


def test_calls_run_together_and_a_reference_waits_only_for_its_source(make_gateway, shop):
    for server in shop.values():
        server.app.config["DELAY"] = 1.0
    gw = make_gateway(config_for(shop))
    started = time.monotonic()
    answer = requests.get(f"{gw.url}/dashboard/2")
    elapsed = time.monotonic() - started
    assert answer.status_code == 200 and answer.json()["team"]["name"] == "Kernels"
    arrivals = {r["path"]: r["at"] for server in shop.values() for r in seen(server)}
    first = min(arrivals.values())
    # user, orders and products were all asked before any of them answered (1 s each) ...
    for path in ("/users/2", "/orders?user_id=2", "/products"):
        assert arrivals[path] - first < 0.5, arrivals
    # ... and team only once user had answered
    assert arrivals["/teams/8"] - arrivals["/users/2"] >= 0.9, arrivals
    # the slowest chain (user, then team: 2 s), not the sum (4 s)
    assert elapsed < 4.0, elapsed  # the arrivals above are the proof; the sum bounds it


@pytest.mark.fault
def test_a_failed_call_gets_its_default_and_an_error(make_gateway, shop):
    config = config_for(shop)
    config["services"]["orders"]["upstream"] = f"http://127.0.0.1:{dead_port()}"  # nothing listens
    gw = make_gateway(config)
    answer = requests.get(f"{gw.url}/dashboard/1")
    assert answer.status_code == 200
    assert answer.headers["X-Gateway-Completed"] == "false"
    body = answer.json()
    assert body["orders"] == []
    assert body["user"]["name"] == "Ada"
    assert body["_errors"] == {"orders": {"status": 502, "error": "bad_gateway", "message":
                                          "the orders service: the upstream service refused "
                                          "the connection"}}


def test_a_failed_source_fails_the_calls_that_use_it(make_gateway, shop):
    gw = make_gateway(config_for(shop))
    answer = requests.get(f"{gw.url}/dashboard/99")  # no such user: 404
    assert answer.status_code == 200
    body = answer.json()
    assert "user" not in body and "team" not in body
    assert body["_errors"]["user"] == {"status": 404, "error": "upstream_status",
                                       "message": "the users service answered 404"}
    assert body["_errors"]["team"]["error"] == "dependency_failed"
    assert body["orders"] == []
    assert not any(r["path"].startswith("/teams") for r in seen(shop["users"]))


@pytest.mark.fault
def test_a_required_call_failing_is_a_502(make_gateway, shop):
    gw = make_gateway(config_for(shop, products={"upstream": f"http://127.0.0.1:{dead_port()}"}))
    answer = requests.get(f"{gw.url}/dashboard/1")
    assert answer.status_code == 502
    assert answer.headers["X-Gateway-Completed"] == "false"
    body = answer.json()
    assert body["error"] == "bad_gateway" and "products" in body["message"]
    assert body["_errors"]["products"]["error"] == "bad_gateway"
    assert body["request_id"]


def test_every_call_failing_is_a_502(make_gateway, shop):
    aggregate = {"path": "/both", "calls": {
        "a": {"service": "users", "path": "/status/500"},
        "b": {"service": "orders", "path": "/text"}}}
    gw = make_gateway(config_for(shop, aggregate))
    answer = requests.get(f"{gw.url}/both")
    assert answer.status_code == 502
    errors = answer.json()["_errors"]
    assert errors["a"] == {"status": 500, "error": "upstream_status",
                           "message": "the users service answered 500"}
    assert errors["b"]["error"] == "invalid_json"


@pytest.mark.fault
def test_a_huge_answer_is_cut_at_the_cap_and_fails_the_call(make_gateway, shop):
    aggregate = {"path": "/big", "max_call_bytes": 4096, "calls": {
        "huge": {"service": "users", "path": "/huge", "query": {"bytes": "10000000"}},
        "small": {"service": "users", "path": "/huge", "query": {"bytes": "10"}}}}
    gw = make_gateway(config_for(shop, aggregate))
    answer = requests.get(f"{gw.url}/big")
    assert answer.status_code == 200
    assert answer.json()["small"] == {"blob": "x" * 10}
    assert answer.json()["_errors"]["huge"]["error"] == "response_too_large"


@pytest.mark.fault
def test_the_aggregate_timeout_bounds_the_answer(make_gateway, shop):
    shop["products"].app.config["DELAY"] = 5.0  # beyond the bound: without the timeout, 5 s+
    aggregate = {**DASHBOARD, "timeout": 0.5, "calls": {
        **DASHBOARD["calls"], "products": {"service": "products", "path": "/products"}}}
    gw = make_gateway(config_for(shop, aggregate))
    started = time.monotonic()
    answer = requests.get(f"{gw.url}/dashboard/1")
    assert time.monotonic() - started < 4.5  # 0.5 s, with room for a slow machine
    assert answer.status_code == 200
    assert answer.json()["_errors"]["products"] == {
        "status": 504, "error": "gateway_timeout",
        "message": "no answer within the aggregate's timeout of 0.5 s"}
    assert answer.json()["team"]["name"] == "Engines"


def test_shape_and_select_reshape_the_merged_answer(make_gateway, shop):
    aggregate = {**DASHBOARD, "shape": "{user: user.name, orders: length(orders), team: team.name}"}
    gw = make_gateway(config_for(shop, aggregate))
    assert requests.get(f"{gw.url}/dashboard/1").json() == {"user": "Ada", "orders": 2,
                                                            "team": "Engines"}


def test_calls_may_post_a_json_body_built_from_earlier_answers(make_gateway, shop):
    aggregate = {"path": "/report/<user_id>", "calls": {
        "user": {"service": "users", "path": "/users/{user_id}"},
        "report": {"service": "orders", "path": "/echo/{user.name}", "method": "POST",
                   "body": {"user": "{user.id}", "label": "user {user.name}", "tags": ["{user_id}"]},
                   "select": "body"}}}
    gw = make_gateway(config_for(shop, aggregate))
    answer = requests.get(f"{gw.url}/report/1")
    assert answer.json()["report"] == {"user": 1, "label": "user Ada", "tags": ["1"]}
    assert seen(shop["orders"])[-1]["path"] == "/echo/Ada"


def test_a_path_parameter_cannot_climb_out_of_the_call_path(make_gateway, shop):
    aggregate = {"path": "/u/<name>", "calls": {
        "echo": {"service": "users", "path": "/echo/{name}"}}}
    gw = make_gateway(config_for(shop, aggregate))
    answer = requests.get(f"{gw.url}/u/a%3Fb=1%23x")
    # one path segment upstream (decoded there), not a query string
    assert answer.json()["echo"]["path"] == "/echo/a?b=1#x"
    assert answer.json()["echo"]["args"] == {}
    assert requests.get(f"{gw.url}/u/..").status_code in (400, 404)


def test_policies_apply_and_the_consumer_goes_upstream(make_gateway, shop):
    config = config_for(shop, {**DASHBOARD, "auth": "api_key", "rate_limit": "2/minute"},
                        orders={"transform": {"request": {"headers": {"add": {"X-Source": "gw"}}}}})
    config["consumers"] = {"web": {"keys": [hash_key("web-key")]}}
    gw = make_gateway(config)
    assert requests.get(f"{gw.url}/dashboard/1").status_code == 401
    answer = requests.get(f"{gw.url}/dashboard/1", headers={"X-API-Key": "web-key"})
    assert answer.status_code == 200 and answer.headers["RateLimit-Remaining"] == "1"
    for server in shop.values():
        for request in seen(server):
            assert request["headers"]["X-Consumer"] == "web"
            assert "X-Api-Key" not in request["headers"]
    # the orders service's transform applies to the aggregate's call as well
    assert seen(shop["orders"])[-1]["headers"]["X-Source"] == "gw"
    requests.get(f"{gw.url}/dashboard/1", headers={"X-API-Key": "web-key"})
    assert requests.get(f"{gw.url}/dashboard/1", headers={"X-API-Key": "web-key"}).status_code == 429


def test_calls_share_a_bounded_pool(make_gateway, shop, monkeypatch):
    monkeypatch.setenv("GATEWAY_CONNECTIONS", "3")
    for server in shop.values():
        server.app.config["DELAY"] = 0.2
    gw = make_gateway(config_for(shop))
    earlier = set(threading.enumerate())  # other tests' gateways have pools of their own
    statuses = []
    clients = [threading.Thread(target=lambda: statuses.append(
        requests.get(f"{gw.url}/dashboard/1").status_code)) for _ in range(8)]
    for client in clients:
        client.start()
    peak = 0
    while any(c.is_alive() for c in clients):
        peak = max(peak, sum(t.name.startswith("aggregate-call")
                             for t in set(threading.enumerate()) - earlier))
        time.sleep(0.01)
    assert statuses == [200] * 8
    assert 1 <= peak <= 3


def test_aggregates_run_concurrently_under_gunicorn(gunicorn_gateway, shop):
    """Under the gevent worker too, the calls overlap: judged by when each reached
    its backend (a loaded machine stretches totals, not the order of arrivals)."""
    gw = gunicorn_gateway(config_for(shop), workers=1)
    assert requests.get(f"{gw.url}/dashboard/1", timeout=10).status_code == 200  # warm
    for server in shop.values():
        server.app.config["DELAY"] = 1.0
        server.app.config["SEEN"].clear()
    started = time.monotonic()
    answer = requests.get(f"{gw.url}/dashboard/1", timeout=10)
    elapsed = time.monotonic() - started
    assert answer.status_code == 200, gw.log()
    assert answer.json()["team"]["name"] == "Engines"
    arrivals = {r["path"]: r["at"] for server in shop.values() for r in seen(server)}
    first = min(arrivals.values())
    for path in ("/users/1", "/orders?user_id=1", "/products"):
        assert arrivals[path] - first < 0.5, arrivals
    assert arrivals["/teams/7"] - arrivals["/users/1"] >= 0.9, arrivals
    assert elapsed < 4.0  # the sum of the delays; the chain is 2 s


@pytest.mark.parametrize("change, problem", [
    ({"team": {"service": "users", "path": "/teams/{usr.team_id}"}},
     "aggregates[0]: calls.team: {usr.team_id} names neither a path parameter of "
     "/dashboard/<user_id> nor a call"),
    ({"user": {"service": "users", "path": "/users/{team.id}"}},
     "aggregates[0]: calls: the calls wait for each other in a cycle (team -> user -> team)"),
    ({"user": {"service": "userz", "path": "/users/1"}},
     "aggregates[0].calls.user.service: 'userz' is not a service"),
    ({"user": {"service": "users", "path": "/u", "select": "foo[?"}},
     "aggregates[0].calls.user.select: 'foo[?' is not a JMESPath expression"),
    ({"user": {"service": "users", "path": "users"}},
     "aggregates[0].calls.user.path: 'users' is not a path"),
])
def test_config_mistakes_name_their_key(change, problem):
    aggregate = {**DASHBOARD, "calls": {**DASHBOARD["calls"], **change}}
    config = {"services": {n: {"upstream": "http://127.0.0.1:1"} for n in ("users", "orders",
                                                                           "products")},
              "aggregates": [aggregate]}
    with pytest.raises(ConfigError) as caught:
        parse_config(config)
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems


def test_an_aggregate_name_may_not_take_a_service_name():
    with pytest.raises(ConfigError) as caught:
        parse_config({"services": {"dashboard": "http://127.0.0.1:1"},
                      "aggregates": [{"path": "/dashboard/<x>", "calls": {
                          "a": {"service": "dashboard", "path": "/{x}"}}}]})
    assert "aggregates[0]: the route name 'dashboard' is already taken" in str(caught.value)


def test_converters_in_the_rule_work(make_gateway, shop):
    aggregate = {"path": "/n/<int:user_id>", "calls": {
        "user": {"service": "users", "path": "/users/{user_id}"}}}
    gw = make_gateway(config_for(shop, aggregate))
    assert requests.get(f"{gw.url}/n/2").json()["user"]["name"] == "Linus"
    assert requests.get(f"{gw.url}/n/two").status_code == 404


def test_the_access_line_counts_concurrent_calls_once(make_gateway, shop, monkeypatch):
    """Three calls of 0.3 s at once: upstream_ms is the time some call was in
    flight (about 0.3 s), never the sum (0.9 s), and never more than duration_ms."""
    from gateway.telemetry import accesslog
    lines: list[str] = []
    monkeypatch.setattr(accesslog, "sink", lines.append)
    for server in shop.values():
        server.app.config["DELAY"] = 0.3
    gw = make_gateway(config_for(shop, {"path": "/three", "calls": {
        "a": {"service": "users", "path": "/users/1"},
        "b": {"service": "orders", "path": "/orders"},
        "c": {"service": "products", "path": "/products"}}}))
    assert requests.get(f"{gw.url}/three", timeout=10).status_code == 200
    deadline = time.monotonic() + 5
    while not lines and time.monotonic() < deadline:
        time.sleep(0.01)
    import json
    entry = json.loads(lines[-1])
    assert 300 <= entry["upstream_ms"] <= entry["duration_ms"], entry
