"""``gateway check``: validates, prints the route table, exits non-zero on errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GATEWAY = Path(sys.executable).parent / "gateway"


def run(*args, **kwargs):
    return subprocess.run([str(GATEWAY), *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=60, **kwargs)


def test_check_prints_route_table_for_the_example():
    result = run("check", "--config", "examples/gateway.yaml")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["PREFIX", "SERVICE", "METHODS", "UPSTREAM", "POLICIES"]
    assert any("api_key" in line for line in lines if line.startswith("/orders"))
    assert any(line.split()[:2] == ["/orders", "orders"] for line in lines)
    assert any(line.split()[:3] == ["/dashboard/<user_id>", "dashboard", "GET"] for line in lines)
    assert "OK, 5 service(s), 1 aggregate(s)" in lines[-1]
    assert any(line.split()[:2] == ["/updates", "updates"] and "websocket" in line for line in lines)


def test_check_fails_with_key_paths(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("services:\n  users:\n    upstream: htp://x\n    retries: lots\n")
    result = run("check", "--config", str(bad))
    assert result.returncode == 1
    assert "services.users.upstream: 'htp://x' is not an http(s) URL" in result.stderr
    assert "services.users.retries: expected a whole number" in result.stderr


def test_check_reads_gateway_config_env(tmp_path):
    import os
    env = dict(os.environ, GATEWAY_CONFIG=str(ROOT / "examples" / "gateway.yaml"))
    assert run("check", env=env).returncode == 0


def test_hash_key_reads_stdin():
    import hashlib
    result = run("hash-key", input="my-secret\n")
    assert result.returncode == 0
    assert result.stdout.strip() == "sha256:" + hashlib.sha256(b"my-secret").hexdigest()


def test_hash_key_without_input_fails():
    result = run("hash-key", input="")
    assert result.returncode == 1 and "gateway hash-key" in result.stderr


def test_check_warns_about_plain_keys_and_per_worker_counting(tmp_path):
    import os
    config = tmp_path / "gw.yaml"
    config.write_text("consumers:\n  alice:\n    keys: [plain-key]\n"
                      "services:\n  users:\n    upstream: http://127.0.0.1:9001\n"
                      "    rate_limit: 10/second\n")
    result = run("check", "--config", str(config), env=dict(os.environ, GATEWAY_WORKERS="4"))
    assert result.returncode == 0
    assert "consumers.alice.keys: 1 key(s) written in plain text" in result.stderr
    assert "each worker counts quotas" in result.stderr and "4 workers" in result.stderr
    single = run("check", "--config", str(config), env=dict(os.environ, GATEWAY_WORKERS="1"))
    assert "each worker counts" not in single.stderr


def test_gunicorn_start_warns_about_memory_storage_with_workers(gunicorn_gateway, tmp_path):
    gw = gunicorn_gateway({"services": {"users": {"upstream": "http://127.0.0.1:9",
                                                  "rate_limit": "5/second"}}}, workers=2)
    import time
    time.sleep(0.5)
    assert "each worker counts quotas, caches and breaker failures on its own" in gw.log()


def test_check_refuses_what_the_app_would_refuse(tmp_path):
    """Blueprint imports and references between sections are checked by `check` too."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("consumers:\n  alice:\n    keys: [sha256:" + "0" * 64 + "]\n"
                   "    services: [userz]\n"
                   "services:\n  users: http://127.0.0.1:9001\n"
                   "blueprints: ['nosuch.module:bp']\n")
    result = run("check", "--config", str(bad))
    assert result.returncode == 1
    assert "blueprints[0]: cannot import 'nosuch.module'" in result.stderr
    assert "Traceback" not in result.stderr
    bad.write_text(bad.read_text().replace("blueprints: ['nosuch.module:bp']\n", ""))
    result = run("check", "--config", str(bad))
    assert result.returncode == 1
    assert "consumers.alice.services: 'userz' is neither a service nor a blueprint" in result.stderr


def test_check_names_the_flag_and_reads_no_directory_or_binary(tmp_path):
    result = run("check", "--config", "/missing.yaml")
    assert result.returncode == 1
    assert "'/missing.yaml' does not exist: check the path given to --config" in result.stderr
    assert "GATEWAY_CONFIG" not in result.stderr
    result = run("check", "--config", str(tmp_path))
    assert result.returncode == 1 and "is a directory" in result.stderr
    binary = tmp_path / "gw.yaml"
    binary.write_bytes(b"services:\n  users: \xff\xfe\n")
    result = run("check", "--config", str(binary))
    assert result.returncode == 1 and "is not UTF-8 text" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_lists_blueprint_routes_and_warns_about_keys_without_consumers(tmp_path):
    config = tmp_path / "gw.yaml"
    config.write_text("services:\n  users:\n    upstream: http://127.0.0.1:9001\n"
                      "    auth: api_key\n"
                      "blueprints:\n  - {blueprint: 'tests.sample_blueprints:bp', rate_limit: 5/second}\n")
    result = run("check", "--config", str(config))
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    assert ["/sample/boom", "sample", "GET", "(blueprint", "tests.sample_blueprints:bp)",
            "quota", "5/second"] in rows
    assert ["/sample/hello", "sample", "GET"] == rows[3][:3]
    assert "services.users.auth: api_key, but no consumers are configured" in result.stderr
    assert result.stdout.splitlines()[-1].endswith(": OK, 1 service(s)")


def test_schema_prints_the_config_json_schema():
    import json
    result = run("schema")
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    assert schema["$schema"].endswith("/2020-12/schema")
    assert schema["additionalProperties"] is False
    assert {"services", "consumers", "blueprints", "storage"} <= set(schema["properties"])
    assert schema["required"] == ["services"]


def test_committed_schema_is_current():
    """gateway.schema.json (what editors read) is what `gateway schema` prints today."""
    result = run("schema")
    assert (ROOT / "gateway.schema.json").read_text() == result.stdout, \
        "run `gateway schema > gateway.schema.json` and commit it"


def test_check_prints_each_routes_chain_in_order(tmp_path):
    config = tmp_path / "gateway.yaml"
    config.write_text("""
consumers: {web: {keys: [web-key], rate_limit: 10/minute}}
services:
  users: {upstream: "http://127.0.0.1:9001", auth: api_key, cache: {ttl: 5},
          cors: {origins: ["https://a.example"]}, allow_ips: [127.0.0.1]}
  orders: {upstream: "http://127.0.0.1:9002", rate_limit: 5/second, max_body_bytes: 100,
           transform: {request: {headers: {add: {X-A: b}}}}}
  plain: "http://127.0.0.1:9003"
aggregates:
  - {path: "/dash/<id>", calls: {o: {service: orders, path: "/orders/{id}"}}}
""")
    result = run("check", "--config", str(config))
    assert result.returncode == 0, result.stderr
    chains = dict(line.split(None, 1) for line in result.stdout.split("CHAINS")[1].splitlines()[1:-1])
    assert chains == {
        "users": "request-id -> path-check -> cors -> ip-rules -> authentication -> quota -> "
                 "cache -> upstream",
        "orders": "request-id -> path-check -> body-size -> quota -> transform -> upstream",
        "plain": "request-id -> path-check -> upstream",
        "dash": "request-id -> transform -> upstream",
    }


def test_duplicate_keys_are_refused_with_both_lines(tmp_path):
    config = tmp_path / "gateway.yaml"
    config.write_text("services:\n  orders: http://127.0.0.1:9001\n"
                      "  users:\n    upstream: http://127.0.0.1:9002\n"
                      "  orders: http://127.0.0.1:9003\n")
    result = run("check", "--config", str(config))
    assert result.returncode == 1
    assert ("services.orders: the key 'orders' is given twice (lines 2 and 5)"
            in result.stderr), result.stderr
