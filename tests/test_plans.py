"""Plans, allowances per calendar period and usage records (issue 32), on one host:
the config's rules, X-Quota-* and quota_exhausted, /_gateway/usage, plans changed at
runtime, `gateway usage` and the Admin API's GET /usage on SQLite."""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from gateway.admin import create_admin_app
from gateway.app import create_app
from gateway.config import ConfigError, hash_key, load_config, parse_config
from gateway.extension import gateway_of
from tests.conftest import wait_for
from tests.test_consumers import ADMIN_TOKEN, run

PLANS = {"free": {"quota": "3/month", "rate_limit": "100/minute", "services": ["orders"]},
         "pro": {"quota": "1000/month"}}


def plans_config(upstream_url: str, storage: str = "memory://", **extra) -> dict:
    return {"storage": storage, "plans": PLANS,
            "consumers": {"acme": {"keys": [hash_key("acme-key")], "plan": "free"},
                          "solo": {"keys": [hash_key("solo-key")], "plan": "free",
                                   "quota": "5/day", "services": ["orders", "users"]},
                          "tight": {"keys": [hash_key("tight-key")], "plan": "free",
                                    "rate_limit": "1/minute"}},
            "services": {"orders": {"upstream": upstream_url, "auth": "api_key"},
                         "users": {"upstream": upstream_url, "auth": "api_key"}},
            **extra}


@pytest.fixture
def make_app():
    """``make_app(config)``: create_app, its background threads stopped after the test."""
    made = []

    def make(config):
        made.append(create_app(config))
        return made[-1]
    yield make
    for app in made:
        gateway = gateway_of(app)
        for part in (gateway.usage, gateway.follower, gateway.health_checker):
            if part is not None:
                part.stop()


def get(client, path: str, key: str | None = None):
    """A request read whole (its access-log line, and so its usage, is written at once)."""
    return client.get(path, headers={"X-API-Key": key} if key else {}, buffered=True)


def seconds_to_next_month() -> float:
    now = datetime.now(UTC)
    start = datetime(now.year + (now.month == 12), now.month % 12 + 1, 1, tzinfo=UTC)
    return start.timestamp() - now.timestamp()


def test_plans_and_allowances_are_checked_naming_the_key():
    with pytest.raises(ConfigError, match=r"plans\.free\.quota: '10/week' is not an allowance"):
        parse_config({"plans": {"free": {"quota": "10/week"}}, "services": {"s": "http://a"}})
    with pytest.raises(ConfigError, match=r"consumers\.acme\.plan: 'gold' is not a plan "
                                          r"\(known: free, pro\)"):
        parse_config({"plans": PLANS, "consumers": {"acme": {"keys": ["k"], "plan": "gold"}},
                      "services": {"orders": "http://a"}})
    with pytest.raises(ConfigError, match=r"consumers\.anonymous: 'anonymous' is reserved"):
        parse_config({"consumers": {"anonymous": {"keys": ["k"]}}, "services": {"s": "http://a"}})
    with pytest.raises(ConfigError, match=r"plans\.free\.services: 'nope' is neither a service"):
        create_app({"plans": {"free": {"services": ["nope"]}}, "services": {"s": "http://a"}})


def test_a_plans_allowance_is_spent_then_refused_with_its_own_code(upstream, make_app):
    client = make_app(plans_config(upstream.url)).test_client()
    answers = [get(client, "/orders/echo", "acme-key") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["X-Quota-Remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert {a.headers["X-Quota-Limit"] for a in answers} == {"3"}
    reset = int(answers[0].headers["X-Quota-Reset"])
    assert abs(reset - seconds_to_next_month()) <= 5  # the month's end, in UTC
    refused = answers[-1]
    assert refused.json["error"] == "quota_exhausted"  # not rate_limited: "upgrade", not "wait"
    assert refused.headers["Retry-After"] == refused.headers["X-Quota-Reset"]
    assert refused.headers["RateLimit-Limit"] == "100"  # the plan's rate limit ran first
    assert upstream.app.hits == 3


def test_refused_before_the_allowance_spends_none_of_it(upstream, make_app):
    client = make_app(plans_config(upstream.url)).test_client()
    assert get(client, "/users/echo", "acme-key").status_code == 403  # the plan's services
    assert get(client, "/orders/echo").status_code == 401
    assert get(client, "/orders/echo", "acme-key").headers["X-Quota-Remaining"] == "2"
    # its own rate limit (1/minute) replaces the plan's and is checked first
    first, second = (get(client, "/orders/echo", "tight-key") for _ in range(2))
    assert (first.status_code, second.status_code) == (200, 429)
    assert second.json["error"] == "rate_limited" and "X-Quota-Limit" not in second.headers
    usage = client.get("/_gateway/usage", headers={"X-API-Key": "tight-key"}).json
    assert usage["quota"]["used"] == 1


def test_a_consumers_own_settings_replace_its_plans(upstream, make_app):
    client = make_app(plans_config(upstream.url)).test_client()
    answer = get(client, "/users/echo", "solo-key")  # its own services
    assert answer.status_code == 200
    assert answer.headers["X-Quota-Limit"] == "5"  # its own 5/day, not the plan's 3/month
    assert 0 < int(answer.headers["X-Quota-Reset"]) <= 86400


def test_gateway_usage_answers_the_consumers_own_period_for_free(upstream, make_app):
    app = make_app(plans_config(upstream.url))
    client = app.test_client()
    for path in ("/orders/echo", "/orders/echo", "/users/echo"):
        get(client, path, "solo-key")
    get(client, "/orders/echo", "acme-key")
    gateway_of(app).usage.flush()
    mine = client.get("/_gateway/usage", headers={"X-API-Key": "solo-key"})
    assert mine.status_code == 200
    today = datetime.now(UTC).strftime("%Y-%m-%dT00:00:00Z")
    assert mine.json == {"consumer": "solo", "plan": "free", "period_start": today,
                         "quota": {"limit": 5, "used": 3, "remaining": 2,
                                   "reset": mine.json["quota"]["reset"]},
                         "services": {"orders": 2, "users": 1}}
    again = client.get("/_gateway/usage", headers={"X-API-Key": "solo-key"}).json
    gateway_of(app).usage.flush()
    assert again["quota"]["used"] == 3  # asking spends nothing and is not recorded
    assert client.get("/_gateway/usage", headers={"X-API-Key": "solo-key"}).json[
        "services"] == {"orders": 2, "users": 1}
    assert client.get("/_gateway/usage").status_code == 401
    assert client.get("/_gateway/usage", headers={"X-API-Key": "nope"}).status_code == 401
    # a consumer without an allowance: its month, quota null
    plain = make_app({"consumers": {"p": {"keys": ["p-key"]}},
                        "services": {"orders": {"upstream": upstream.url, "auth": "api_key"}}})
    answer = plain.test_client().get("/_gateway/usage", headers={"X-API-Key": "p-key"}).json
    assert answer["quota"] is None and answer["plan"] is None
    assert answer["period_start"] == datetime.now(UTC).strftime("%Y-%m-01T00:00:00Z")


@pytest.mark.redis
def test_an_allowance_on_redis_is_shared_and_never_over_admitted(upstream, redis_url, make_app):
    config = plans_config(upstream.url, storage=redis_url,
                            plans={**PLANS, "free": {**PLANS["free"], "quota": "10/month"}})
    clients = [make_app(config).test_client() for _ in range(2)]
    answers = [get(clients[i % 2], "/orders/echo", "acme-key").status_code for i in range(16)]
    assert answers.count(200) == 10 and answers.count(429) == 6
    usage = clients[0].get("/_gateway/usage", headers={"X-API-Key": "acme-key"}).json
    assert usage["quota"] == {"limit": 10, "used": 10, "remaining": 0,
                              "reset": usage["quota"]["reset"]}


# -- on a database ----------------------------------------------------------------------

def database_config(tmp_path, upstream_url: str, plans=PLANS) -> str:
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump({
        "database": "sqlite:///gateway.db", "plans": plans,
        "admin": {"tokens": {"ops": hash_key(ADMIN_TOKEN)}},
        "usage": {"flush_seconds": 0.2},
        "services": {"orders": {"upstream": upstream_url, "auth": "api_key"},
                     "users": {"upstream": upstream_url, "auth": "api_key"}}}))
    assert run(path, "db", "upgrade")[0] == 0
    return str(path)


def test_a_plan_changed_at_runtime_applies_within_a_second_and_keeps_what_was_used(
        tmp_path, upstream, make_app):
    path = database_config(tmp_path, upstream.url)
    assert run(path, "consumers", "add", "partner", "--plan", "free") == \
        (0, "consumer 'partner' added\n", "")
    code, _, err = run(path, "consumers", "add", "other", "--plan", "gold")
    assert code == 1 and "--plan: 'gold' is not a plan of gateway.yaml (known: free, pro)" in err
    key = run(path, "keys", "issue", "partner")[1].strip()
    app = make_app(path)
    client = app.test_client()
    assert wait_for(lambda: get(client, "/orders/echo", key).status_code == 200, timeout=5)
    get(client, "/orders/echo", key)
    assert get(client, "/orders/echo", key).headers["X-Quota-Remaining"] == "0"
    assert get(client, "/orders/echo", key).status_code == 429
    assert run(path, "consumers", "set", "partner", "--plan", "pro")[0] == 0
    changed = time.monotonic()
    assert wait_for(lambda: get(client, "/orders/echo", key).status_code == 200, timeout=5)
    assert time.monotonic() - changed < 1.5
    # 3 admitted under free, this one and the one that found it: 1000 - 5 left
    answer = get(client, "/users/echo", key)  # pro has no services list: all
    assert (answer.status_code, answer.headers["X-Quota-Limit"]) == (200, "1000")
    assert 994 <= int(answer.headers["X-Quota-Remaining"]) <= 995
    listed = json.loads(run(path, "consumers", "list", "--format", "json")[1])
    assert [(c["name"], c["plan"]) for c in listed] == [("partner", "pro")]
    # the plan gone from the file while the database names it: refused, naming it
    trimmed = tmp_path / "trimmed.yaml"
    trimmed.write_text(Path(path).read_text().replace("  pro:\n    quota: 1000/month\n", ""))
    code, _, err = run(str(trimmed), "check")
    assert code == 1 and "plan 'pro' is gone from this file but consumers in the " \
        "database name it: partner" in err


def test_usage_records_are_written_and_read_back(tmp_path, upstream, make_app):
    path = database_config(tmp_path, upstream.url)
    run(path, "consumers", "add", "partner", "--plan", "pro")
    key = run(path, "keys", "issue", "partner")[1].strip()
    app = make_app(path)
    client = app.test_client()
    gateway = gateway_of(app)
    assert wait_for(lambda: get(client, "/orders/echo", key).status_code == 200, timeout=5)
    for status in ("201", "404", "503"):
        get(client, f"/orders/status/{status}", key)
    client.post("/users/echo", data=b"x" * 100, headers={"X-API-Key": key}, buffered=True)
    get(client, "/orders/echo")                    # anonymous: a 401
    get(client, "/orders/echo", "wrong")           # anonymous too
    get(client, "/_gateway/usage", key)            # not recorded
    get(client, "/nowhere", key)                   # no service: not recorded
    gateway.usage.flush()
    code, out, _ = run(path, "usage", "--format", "json")
    rows = {(r["consumer"], r["service"]): r for r in json.loads(out)}
    assert set(rows) == {("partner", "orders"), ("partner", "users"),
                         ("anonymous", "orders")}
    orders = rows[("partner", "orders")]
    today = datetime.now(UTC).strftime("%Y-%m-%dT00:00:00Z")
    assert list(orders) == ["consumer", "service", "period_start", "requests",
                            "status_2xx", "status_3xx", "status_4xx", "status_5xx",
                            "status_429", "bytes_in", "bytes_out", "latency_p50_ms",
                            "latency_p95_ms"]
    assert (orders["period_start"], orders["requests"], orders["status_2xx"],
            orders["status_4xx"], orders["status_5xx"], orders["status_429"]) == \
        (today, 4, 2, 1, 1, 0)
    assert orders["latency_p50_ms"] in (5, 10, 25, 50, 100, 250, 500, 1000)
    assert rows[("partner", "users")]["bytes_in"] == 100
    assert rows[("anonymous", "orders")]["status_4xx"] == 2
    # csv: a header row and the same columns; table; filters
    _, out, _ = run(path, "usage", "--format", "csv", "--consumer", "partner",
                    "--by", "month")
    parsed = list(csv.DictReader(io.StringIO(out)))
    assert [(r["service"], r["requests"]) for r in parsed] == [("orders", "4"),
                                                              ("users", "1")]
    assert parsed[0]["period_start"] == datetime.now(UTC).strftime("%Y-%m-01T00:00:00Z")
    _, out, _ = run(path, "usage", "--service", "users")
    assert out.splitlines()[0].split()[:3] == ["CONSUMER", "SERVICE", "PERIOD_START"]
    assert len(out.splitlines()) == 2
    code, _, err = run(path, "usage", "--from", "yesterday")
    assert code == 1 and "--from: 'yesterday' is neither a date" in err
    assert json.loads(run(path, "usage", "--from", "2030-01-01", "--format", "json")[1]) \
        == []
    # the Admin API: the same rows
    admin = create_admin_app(load_config(path), gateway.follower.engine,
                             ["orders", "users"]).test_client()
    bearer = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    answer = admin.get("/usage?consumer=partner&by=hour", headers=bearer)
    assert answer.status_code == 200
    assert sum(r["requests"] for r in answer.json) == 5
    schema = admin.get("/openapi.json").json["components"]["schemas"]["Usage"]
    assert all(set(row) == set(schema["required"]) for row in answer.json)
    bad = admin.get("/usage?by=week", headers=bearer)
    assert (bad.status_code, bad.json["error"]) == (400, "bad_request")
    assert admin.get("/usage").status_code == 401


def test_the_schema_of_issue_31_is_upgraded_with_its_consumers(tmp_path, upstream):
    from alembic import command

    from gateway.db import open_engine
    from gateway.db.engine import _alembic_config

    config_path = tmp_path / "old.yaml"
    config_path.write_text(yaml.safe_dump({"database": "sqlite:///old.db",
                                           "services": {"orders": upstream.url}}))
    engine = open_engine("sqlite:///old.db", str(config_path))
    alembic = _alembic_config()
    with engine.begin() as connection:
        alembic.attributes["connection"] = connection
        command.upgrade(alembic, "0001")
        connection.exec_driver_sql(
            "INSERT INTO gateway_consumers (name, rate_limit, services, meta, created_at) "
            "VALUES ('kept', '5/minute', NULL, '{}', '2026-12-01 00:00:00')")
    engine.dispose()
    assert run(str(config_path), "db", "upgrade")[1].endswith("schema upgraded to version 0002\n")
    listed = json.loads(run(str(config_path), "consumers", "list", "--format", "json")[1])
    assert [(c["name"], c["rate_limit"], c["plan"], c["quota"]) for c in listed] == \
        [("kept", "5/minute", None, None)]


@pytest.mark.fault
def test_an_allowance_fails_open_with_its_store_as_rate_limits_do(upstream, make_app):
    from tests.conftest import dead_port

    down = f"redis://127.0.0.1:{dead_port()}"
    config = plans_config(upstream.url, storage=down,
                            plans={**PLANS, "free": {"quota": "1/month"}})
    client = make_app(config).test_client()
    answers = [get(client, "/orders/echo", "acme-key") for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 200]  # uncounted, let through
    assert "X-Quota-Remaining" not in answers[0].headers
    denying = make_app({**config, "on_storage_error": "deny"}).test_client()
    refused = get(denying, "/orders/echo", "acme-key")
    assert (refused.status_code, refused.json["error"]) == (503, "storage_unavailable")
