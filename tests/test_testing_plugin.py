"""gateway.testing, the pytest plugin (issue 33), as a user meets it: a directory with a
gateway.yaml and a test file, run by pytest with nothing else (pytester)."""

from __future__ import annotations

import textwrap

import pytest

from gateway.config import hash_key

GATEWAY_YAML = textwrap.dedent(f"""\
    consumers:
      acme:
        keys: ["{hash_key('acme-production-key')}"]
    services:
      orders:
        upstream: http://orders.internal:8080
        auth: api_key
        rate_limit: 2/minute
      catalog:
        upstream: [http://catalog-a.internal, http://catalog-b.internal/v2]
        strip_prefix: true
        retries: 1
    """)


@pytest.fixture
def project(pytester: pytest.Pytester):
    pytester.makefile(".yaml", gateway=GATEWAY_YAML)
    return pytester


def test_a_users_tests_run_against_fakes_with_a_moved_clock(project):
    project.makepyfile(test_orders=textwrap.dedent("""\
        import pytest

        def test_a_key_is_needed_and_never_reaches_the_upstream(gateway_client, upstreams,
                                                                api_key):
            assert gateway_client.get("/orders/1").status_code == 401
            key = api_key("acme")
            answer = gateway_client.get("/orders/1", headers={"X-API-Key": key})
            assert answer.status_code == 200
            assert answer.json["path"] == "/orders/1"  # the default echo
            (seen,) = upstreams["orders"].requests
            assert seen.headers["x-consumer"] == "acme" and "X-API-Key" not in seen.headers
            upstreams["orders"].assert_called("GET", "/orders/*", headers={"X-Consumer": "acme"})

        def test_the_quota_recovers_when_the_clock_moves(gateway_client, api_key,
                                                         gateway_clock):
            key = {"X-API-Key": api_key("acme")}
            statuses = [gateway_client.get("/orders/1", headers=key).status_code
                        for _ in range(3)]
            assert statuses == [200, 200, 429]
            gateway_clock.advance(60)
            assert gateway_client.get("/orders/1", headers=key).status_code == 200

        def test_rules_failures_and_a_target_down(gateway_client, upstreams):
            catalog = upstreams["catalog"]
            assert len(catalog.targets) == 2
            catalog.respond("GET", "/items/*", json={"items": []}, headers={"X-From": "fake"})
            answer = gateway_client.get("/catalog/items/7?page=2")
            assert answer.json == {"items": []} and answer.headers["X-From"] == "fake"
            assert catalog.requests[-1].query == {"page": ["2"]}
            # the second target's base path goes on: /v2/items/7
            paths = {r.path for t in catalog.targets for r in t.requests}
            assert paths == {"/items/7", "/v2/items/7"} or len(paths) == 1
            catalog.reset()
            catalog.fail(1, status=503)  # the next request, whichever target takes it
            assert [gateway_client.get("/catalog/x").status_code for _ in range(2)] == [503, 200]
            assert len(catalog.requests) == 2
            catalog.targets[0].down()  # one target refusing: the other answers (failover)
            assert {gateway_client.get("/catalog/x").status_code for _ in range(4)} == {200}
            catalog.down()
            assert gateway_client.get("/catalog/x").status_code == 502
            catalog.up()
            assert gateway_client.get("/catalog/x").status_code == 200

        def test_a_failed_assertion_lists_what_arrived(gateway_client, upstreams):
            gateway_client.get("/catalog/a?x=1")
            with pytest.raises(AssertionError) as failure:
                upstreams["catalog"].assert_called("POST", "/a")
            assert "expected 1 POST /a, got 0" in str(failure.value)
            assert "GET /a?x=1" in str(failure.value) or "GET /v2/a?x=1" in str(failure.value)

        def test_an_unknown_consumer_is_named(api_key):
            api_key("nobody")
        """))
    result = project.runpytest("-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning")
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines(["*api_key('nobody'): no such consumer (known: acme)*"])


def test_the_config_is_the_fixture_then_the_option_then_the_setting(pytester):
    pytester.makefile(".yaml", a="services: {alpha: http://a.internal}\n",
                      b="services: {beta: http://b.internal}\n")
    pytester.makeini("[pytest]\ngateway_config = a.yaml\n")
    pytester.makepyfile(test_which=textwrap.dedent("""\
        def test_which(upstreams):
            print("SERVICES", sorted(upstreams))
        """))
    assert "SERVICES ['alpha']" in pytester.runpytest("-s").stdout.str()
    assert "SERVICES ['beta']" in pytester.runpytest("-s", "--gateway-config",
                                                     "b.yaml").stdout.str()
    pytester.makeconftest(textwrap.dedent("""\
        import pytest

        @pytest.fixture
        def gateway_config():
            return {"services": {"gamma": "http://g.internal"}}
        """))
    assert "SERVICES ['gamma']" in pytester.runpytest("-s", "--gateway-config",
                                                      "b.yaml").stdout.str()


def test_without_a_config_the_error_lists_the_three_ways(pytester):
    pytester.makepyfile(test_none="def test_none(gateway_app):\n    pass\n")
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(["*no gateway config*", "*a gateway_config fixture*",
                                 "*--gateway-config PATH*", "*gateway_config = PATH*"])


def test_tokens_are_issued_as_the_configs_issuer_would_and_expire_on_its_clock(pytester):
    pytester.makefile(".yaml", gateway=textwrap.dedent("""\
        issuers:
          corp:
            issuer: https://login.example.com/realms/corp
            audiences: [orders-api, other-api]
        services:
          orders:
            upstream: http://orders.internal
            auth: jwt
            scopes: {GET: [orders:read], POST: [orders:write]}
            claims_to_headers: {X-User: sub}
        """))
    pytester.makepyfile(test_tokens=textwrap.dedent("""\
        def test_scopes_and_expiry(gateway_client, issue_token, gateway_clock, upstreams):
            token = issue_token(sub="alice", scopes=["orders:read"], expires_in=300)
            bearer = {"Authorization": f"Bearer {token}"}
            assert gateway_client.get("/orders/1", headers=bearer).status_code == 200
            assert upstreams["orders"].requests[-1].headers["X-User"] == "alice"
            refused = gateway_client.post("/orders/1", headers=bearer)
            assert (refused.status_code, refused.json["error"]) == (403, "insufficient_scope")
            gateway_clock.advance(300 + 30)  # its lifetime and the issuer's 30 s leeway
            assert gateway_client.get("/orders/1", headers=bearer).status_code == 401
            other = issue_token(sub="bob", audience="other-api", scopes=["orders:read"])
            assert gateway_client.get(
                "/orders/1", headers={"Authorization": f"Bearer {other}"}).status_code == 200
        """))
    pytester.runpytest().assert_outcomes(passed=1)


def test_gateway_server_serves_the_same_config_with_the_same_fakes(project):
    project.makepyfile(test_served=textwrap.dedent("""\
        import requests

        def test_served(gateway_server, upstreams, api_key):
            upstreams["orders"].respond("GET", "/orders/1", json={"id": 1})
            answer = requests.get(f"{gateway_server}/orders/1",
                                  headers={"X-API-Key": api_key("acme")}, timeout=10)
            assert answer.json() == {"id": 1}
            upstreams["orders"].assert_called("GET", "/orders/1", headers={"X-Consumer": "acme"})

        def test_a_failure_shows_its_log(gateway_server):
            requests.get(f"{gateway_server}/nowhere", timeout=10)
            assert False, "on purpose"
        """))
    result = project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*gateway server log*", "*Worker ready*"])
    # nothing is left listening: no gateway serve process of this test remains
    import subprocess
    left = subprocess.run(["pgrep", "-f", str(project.path)], capture_output=True, text=True)
    assert left.stdout.strip() == ""


def test_the_guides_example_runs_from_an_empty_directory(pytester):
    """docs/guides/testing.md's gateway.yaml and test file, as written."""
    from pathlib import Path

    guide = (Path(__file__).resolve().parent.parent / "docs" / "guides" / "testing.md").read_text()
    config = guide.split("```yaml\n", 1)[1].split("```", 1)[0]
    tests = guide.split("```python\n", 1)[1].split("```", 1)[0]
    pytester.makefile(".yaml", gateway=config.replace('"sha256:…"',
                                                      f'"{hash_key("real-key")}"'))
    pytester.makepyfile(test_gateway=tests)
    pytester.runpytest("-q").assert_outcomes(passed=2)


@pytest.mark.redis
def test_tests_run_apart_under_xdist_even_on_redis(project, suite_redis, monkeypatch):
    monkeypatch.setenv("GATEWAY_TEST_REDIS", suite_redis.url)
    project.makepyfile(test_parallel=textwrap.dedent("""\
        import pytest

        @pytest.mark.parametrize("n", range(6))
        @pytest.mark.gateway(storage="redis")
        def test_each_has_its_own_counters(n, gateway_client, api_key):
            key = {"X-API-Key": api_key("acme")}
            assert [gateway_client.get("/orders/1", headers=key).status_code
                    for _ in range(3)] == [200, 200, 429]

        @pytest.mark.parametrize("n", range(6))
        def test_and_its_own_fakes(n, gateway_client, upstreams):
            upstreams["catalog"].respond("GET", "/n", json={"n": n})
            assert gateway_client.get("/catalog/n").json == {"n": n}
            assert len(upstreams["catalog"].requests) == 1
        """))
    result = project.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=12)
    result.stdout.fnmatch_lines(["*2 workers*"])


def test_health_checks_probe_on_the_tests_clock_when_asked(pytester):
    pytester.makefile(".yaml", gateway=textwrap.dedent("""\
        services:
          catalog:
            upstream: [http://catalog-a.internal, http://catalog-b.internal]
            health_check: {path: /healthz, interval: 5, unhealthy_threshold: 2,
                           healthy_threshold: 1}
        """))
    pytester.makepyfile(test_health=textwrap.dedent("""\
        import pytest

        def answered(client, upstreams, times=6):
            for _ in range(times):
                assert client.get("/catalog/x").status_code == 200
            return [len(t.requests) for t in upstreams["catalog"].targets]

        @pytest.mark.gateway(health_checks=True)
        def test_a_failing_target_leaves_and_comes_back(gateway_client, upstreams,
                                                        gateway_clock):
            first, second = upstreams["catalog"].targets
            assert all(answered(gateway_client, upstreams))  # both in rotation
            first.respond("GET", "/healthz", status=503)
            gateway_clock.advance(10)  # two rounds in the span, two failed probes: out
            first.forget_requests(), second.forget_requests()
            assert answered(gateway_client, upstreams) == [0, 6]
            first.reset()
            gateway_clock.advance(5)  # one good probe: back
            assert all(answered(gateway_client, upstreams))

        def test_without_the_marker_nothing_probes(gateway_client, upstreams, gateway_clock):
            upstreams["catalog"].targets[0].respond("GET", "/healthz", status=503)
            gateway_clock.advance(60)
            assert all(answered(gateway_client, upstreams))
        """))
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_tracing_runs_only_when_asked(pytester):
    pytester.makefile(".yaml", gateway=textwrap.dedent("""\
        tracing: {exporter: otlp, endpoint: "http://127.0.0.1:9"}
        services:
          orders: http://orders.internal
        """))
    pytester.makepyfile(test_traced=textwrap.dedent("""\
        import pytest

        def test_off_by_default(gateway_app, gateway_client):
            assert gateway_app.extensions["gateway"].tracing is None
            assert gateway_client.get("/orders/1").status_code == 200

        @pytest.mark.gateway(tracing=True)
        def test_on_when_asked(gateway_app, gateway_client):
            assert gateway_app.extensions["gateway"].tracing is not None
            assert gateway_client.get("/orders/1").status_code == 200

        @pytest.mark.gateway(colour="red")
        def test_a_wrong_option_is_named(gateway_app):
            pass
        """))
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*unknown option(s) colour (known: storage, health_checks, "
                                 "tracing, workers)*"])


def test_loading_the_plugin_imports_nothing_of_the_gateway():
    import subprocess
    import sys

    code = ("import sys, gateway.testing.plugin; "
            "print(sorted(m for m in ('flask', 'gateway.app', 'gateway.config', 'sqlalchemy', "
            "'urllib3', 'limits') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_a_mirror_has_its_fake_and_a_database_consumer_gets_a_key(pytester):
    from click.testing import CliRunner

    from gateway.cli import main as cli

    pytester.makefile(".yaml", gateway=textwrap.dedent(f"""\
        database: sqlite:///{pytester.path}/gateway.db
        services:
          orders:
            upstream: http://orders.internal
            auth: api_key
            mirror: {{upstream: http://orders-next.internal, percent: 100}}
        """))
    config = str(pytester.path / "gateway.yaml")
    for command in (["db", "upgrade"], ["consumers", "add", "partner"]):
        assert CliRunner().invoke(cli, [*command, "--config", config]).exit_code == 0
    pytester.makepyfile(test_mirror=textwrap.dedent("""\
        import time

        def test_mirrored(gateway_client, upstreams, api_key):
            key = {"X-API-Key": api_key("partner")}
            assert gateway_client.post("/orders/1", headers=key, json={"n": 1}).status_code == 200
            mirror = upstreams["orders"].mirror
            deadline = time.monotonic() + 10  # the copy goes in the background
            while not mirror.requests and time.monotonic() < deadline:
                time.sleep(0.01)
            (copy,) = mirror.requests
            assert (copy.method, copy.path, copy.json) == ("POST", "/orders/1", {"n": 1})
            assert len(upstreams["orders"].requests) == 1

        def test_served(gateway_server, api_key):
            import requests
            answer = requests.get(f"{gateway_server}/orders/1",
                                  headers={"X-API-Key": api_key("partner")}, timeout=10)
            assert answer.status_code == 200

        def test_unknown(api_key):
            api_key("nobody")
        """))
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*no such consumer in gateway.yaml or the database*"])
    # the keys issued for the tests were revoked after them
    listed = CliRunner().invoke(cli, ["keys", "list", "--format", "json", "--config", config])
    import json
    keys = json.loads(listed.stdout)
    assert len(keys) == 2 and all(k["revoked_at"] for k in keys)


def test_a_config_that_cannot_be_read_is_named(pytester):
    pytester.makepyfile(test_missing="def test_missing(gateway_app):\n    pass\n")
    result = pytester.runpytest("--gateway-config", "nowhere.yaml")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*the config under test, */nowhere.yaml, cannot be read "
                                 "(No such file or directory)*"])


def test_an_allowance_renews_when_gateway_clock_reaches_the_next_month(pytester):
    pytester.makefile(".yaml", gateway=textwrap.dedent("""\
        plans:
          free: {quota: 2/month}
        consumers:
          acme: {keys: ["sha256:%s"], plan: free}
        services:
          orders: {upstream: "http://orders.internal", auth: api_key}
        """ % ("0" * 64)))
    pytester.makepyfile(test_month=textwrap.dedent("""\
        from datetime import datetime, timezone

        def test_month(gateway_client, api_key, gateway_clock):
            key = {"X-API-Key": api_key("acme")}
            assert [gateway_client.get("/orders/1", headers=key).status_code
                    for _ in range(3)] == [200, 200, 429]
            usage = gateway_client.get("/_gateway/usage", headers=key).json
            assert usage["quota"]["used"] == 2
            gateway_clock.advance(usage["quota"]["reset"])  # the month's turn, UTC
            answer = gateway_client.get("/orders/1", headers=key)
            assert answer.status_code == 200 and answer.headers["X-Quota-Remaining"] == "1"
            usage = gateway_client.get("/_gateway/usage", headers=key).json
            start = datetime.fromtimestamp(gateway_clock.time(), timezone.utc)
            assert usage["period_start"] == start.strftime("%Y-%m-01T00:00:00Z")
            assert usage["quota"]["used"] == 1
        """))
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
