"""Consumers and keys at runtime on SQLite: the CLI, the Admin API, and a gateway that
follows them without a reload (issue 31). PostgreSQL and gunicorn: test_consumers_hosts.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from gateway.admin import create_admin_app
from gateway.cli import main as cli
from gateway.config import ConfigError, hash_key, load_config
from gateway.db import open_engine
from gateway.extension import gateway_of
from tests.conftest import wait_for

ADMIN_TOKEN = "admin-token-for-tests"


def write_config(directory: Path, upstream_url: str, **extra) -> Path:
    config = {"database": "sqlite:///gateway.db",
              "admin": {"tokens": {"ops": hash_key(ADMIN_TOKEN)}},
              "consumers": {"filed": {"keys": [hash_key("file-key")]}},
              "services": {"users": {"upstream": upstream_url, "auth": "api_key"},
                           "orders": {"upstream": upstream_url, "auth": "api_key"}},
              **extra}
    path = directory / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run(path: Path, *args: str) -> tuple[int, str, str]:
    """``gateway ARGS --config PATH`` in this process: (exit code, stdout, stderr)."""
    result = CliRunner().invoke(cli, [*args, "--config", str(path)])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def config_path(tmp_path, upstream):
    path = write_config(tmp_path, upstream.url)
    assert run(path, "db", "upgrade")[0] == 0
    return path


def test_no_database_and_no_schema_are_refused_naming_the_fix(tmp_path, upstream):
    plain = tmp_path / "plain.yaml"
    plain.write_text(yaml.safe_dump({"services": {"users": upstream.url}}))
    assert run(plain, "consumers", "list") == (
        1, "", f"no database configured: add database: to {plain} "
               "(e.g. database: sqlite:///gateway.db)\n")
    path = write_config(tmp_path, upstream.url)
    code, _, err = run(path, "consumers", "list")
    assert code == 1 and "has no gateway schema: run `gateway db upgrade --config" in err
    code, _, err = run(path, "check")
    assert code == 1 and f"`gateway db upgrade --config {path}`" in err
    with pytest.raises(ConfigError, match="gateway db upgrade"):
        from gateway.app import create_app
        create_app(str(path))
    # only the upgrade creates it, and twice is harmless
    assert run(path, "db", "upgrade")[1].endswith("schema created at version 0002\n")
    assert run(path, "db", "upgrade")[1].endswith("schema already at version 0002\n")
    assert run(path, "check")[0] == 0


def test_a_relative_sqlite_path_is_relative_to_the_config_file(config_path, tmp_path,
                                                                monkeypatch):
    monkeypatch.chdir(Path(os.sep))
    assert run(config_path, "consumers", "add", "partner")[0] == 0
    assert (tmp_path / "gateway.db").exists() and not (Path(os.sep) / "gateway.db").exists()
    # a worker reads a copy of the file elsewhere; the operator's file still decides
    copy = tmp_path / "copies" / "gateway-1.yaml"
    copy.parent.mkdir()
    copy.write_text(config_path.read_text())
    monkeypatch.setenv("GATEWAY_CONFIG_ORIGIN", str(config_path))
    assert run(copy, "consumers", "list")[1].splitlines()[1].startswith("partner")


def test_the_cli_adds_lists_shows_and_removes_and_refuses_with_one_line(config_path):
    assert run(config_path, "consumers", "add", "partner", "--rate-limit", "100/minute",
               "--services", "users,orders", "--meta", "tier=gold") == \
        (0, "consumer 'partner' added\n", "")
    code, out, _ = run(config_path, "consumers", "list", "--format", "json")
    [shown] = json.loads(out)
    assert shown["name"] == "partner" and shown["services"] == ["users", "orders"]
    assert shown["rate_limit"] == "100/minute" and shown["metadata"] == {"tier": "gold"}
    # the file's consumer is not listed, and cannot be changed here
    assert "filed" not in run(config_path, "consumers", "list")[1]
    assert run(config_path, "consumers", "add", "filed") == (
        1, "", "consumer 'filed' is written in gateway.yaml: change it there\n")
    assert run(config_path, "consumers", "add", "partner")[0:2] == (1, "")
    assert run(config_path, "consumers", "show", "nobody") == (
        1, "", "no consumer named 'nobody'\n")
    assert run(config_path, "consumers", "add", "x", "--rate-limit", "often")[2].startswith(
        "--rate-limit: 'often' is not a rate limit")
    assert run(config_path, "consumers", "add", "x", "--services", "nope")[2].startswith(
        "services[0]: 'nope' is neither a service nor a blueprint")
    assert run(config_path, "keys", "issue", "partner", "--expires", "soon")[0] == 1
    assert run(config_path, "keys", "issue", "partner", "--expires",
               "2020-01-01T00:00:00Z") == (1, "", "--expires: 2020-01-01T00:00:00Z is in the "
                                                  "past\n")
    assert run(config_path, "keys", "rotate", "key_nope", "--grace", "1w")[2].startswith(
        "--grace: '1w' is not a duration")
    assert run(config_path, "consumers", "remove", "partner") == \
        (0, "consumer 'partner' removed\n", "")
    assert json.loads(run(config_path, "consumers", "list", "--format", "json")[1]) == []


def test_a_key_is_printed_alone_once_and_only_its_hash_is_stored(config_path):
    run(config_path, "consumers", "add", "partner")
    code, key, err = run(config_path, "keys", "issue", "partner", "--label", "laptop",
                         "--expires", "30d")
    key = key.strip()
    assert code == 0 and err == "" and key.startswith("gw_") and len(key) == 39
    code, out, _ = run(config_path, "keys", "issue", "partner", "--format", "json")
    issued = json.loads(out)
    assert set(issued) == {"id", "key", "hint", "consumer", "expires_at"}
    assert issued["hint"] == f"gw_…{issued['key'][-4:]}" and issued["expires_at"] is None
    listed = json.loads(run(config_path, "keys", "list", "partner", "--format", "json")[1])
    assert [k["label"] for k in listed] == ["laptop", None]
    assert all("key" not in k for k in listed)
    stored = (config_path.parent / "gateway.db").read_bytes()
    assert key.encode() not in stored and issued["key"].encode() not in stored
    exported = run(config_path, "export")[1]
    assert key not in exported and '"hash": "sha256:' in exported


def test_keys_issued_revoked_rotated_take_effect_without_a_reload(config_path, upstream):
    from gateway.app import create_app

    run(config_path, "consumers", "add", "partner", "--services", "users")
    app = create_app(str(config_path))
    client = app.test_client()
    follower = gateway_of(app).follower
    try:
        def status(key: str, path: str = "/users/echo") -> int:
            return client.get(path, headers={"X-API-Key": key}).status_code

        key = run(config_path, "keys", "issue", "partner")[1].strip()
        issued_at = time.monotonic()
        assert wait_for(lambda: status(key) == 200, timeout=5)
        assert time.monotonic() - issued_at < 1.0 + 0.5  # the poll, and this loop's own pace
        assert status(key, "/orders/echo") == 403            # its allow-list
        assert client.get("/users/echo", headers={"X-API-Key": key}).json["headers"][
            "x-consumer"] == "partner"
        assert status("file-key") == 200                     # the file's keys too
        # a tampered checksum: refused before any lookup, counted as such
        tampered = key[:-1] + ("0" if key[-1] != "0" else "1")
        assert status(tampered) == 401
        metrics = client.get("/metrics").text
        assert 'gateway_auth_failures_total{reason="bad_checksum",service="users"} 1.0' in metrics
        # rotated with a grace: both work until it ends, then only the new one
        key_id = json.loads(run(config_path, "keys", "list", "--format", "json")[1])[0]["id"]
        new = run(config_path, "keys", "rotate", key_id, "--grace", "3s")[1].strip()
        assert wait_for(lambda: status(new) == 200, timeout=5)
        assert status(key) == 200
        assert wait_for(lambda: status(key) == 401, timeout=10) and status(new) == 200
        # revoked: refused within a second
        [new_id] = [k["id"] for k in json.loads(run(config_path, "keys", "list", "--format",
                                                    "json")[1]) if k["hint"].endswith(new[-4:])]
        run(config_path, "keys", "revoke", new_id)
        assert wait_for(lambda: status(new) == 401, timeout=5)
        # the consumer changed, then removed: its limit and allow-list, then its keys
        third = run(config_path, "keys", "issue", "partner")[1].strip()
        assert wait_for(lambda: status(third) == 200, timeout=5)
        admin = create_admin_app(load_config(str(config_path)), follower.engine,
                                 ["users", "orders"]).test_client()
        bearer = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        assert admin.patch("/consumers/partner", json={"rate_limit": "2/minute",
                                                       "services": None},
                           headers=bearer).status_code == 200
        assert wait_for(lambda: status(third, "/orders/echo") != 403, timeout=5)
        answers = [status(third, "/orders/echo") for _ in range(3)]
        assert 429 in answers
        assert admin.delete("/consumers/partner", headers=bearer).status_code == 204
        assert wait_for(lambda: status(third) == 401, timeout=5)
    finally:
        follower.stop()


def test_an_expired_key_is_refused_like_an_unknown_one(config_path):
    from datetime import UTC, datetime, timedelta

    from gateway.app import create_app
    from gateway.db import Records
    from gateway.db.records import ConsumerFields

    engine = open_engine("sqlite:///gateway.db", str(config_path))
    records = Records(engine, actor="test")
    records.add_consumer(ConsumerFields(name="partner"))
    expiring = records.issue_key("partner", expires_at=datetime.now(UTC) + timedelta(seconds=2))
    app = create_app(str(config_path))
    client = app.test_client()
    try:
        assert client.get("/users/echo", headers={"X-API-Key": expiring["key"]}).status_code \
            == 200
        assert wait_for(lambda: client.get("/users/echo", headers={
            "X-API-Key": expiring["key"]}).json.get("error") == "invalid_api_key", timeout=5)
        unknown = client.get("/users/echo", headers={"X-API-Key": "gw_" + "x" * 36})
        assert unknown.status_code == 401 and unknown.json["error"] == "invalid_api_key"
        # when it was last used: written off the request path, by the follower
        gateway_of(app).follower.touch()
        [listed] = records.list_keys("partner")
        assert listed["last_used_at"] is not None
    finally:
        gateway_of(app).follower.stop()


def test_the_same_name_in_the_file_and_the_database_is_refused(config_path, tmp_path,
                                                              upstream):
    from gateway.db import Records
    from gateway.db.records import ConsumerFields

    Records(open_engine("sqlite:///gateway.db", str(config_path)), actor="test").add_consumer(
        ConsumerFields(name="twice"))
    config = yaml.safe_load(config_path.read_text())
    config["consumers"]["twice"] = {"keys": [hash_key("k2")]}
    config_path.write_text(yaml.safe_dump(config))
    code, _, err = run(config_path, "check")
    assert code == 1 and "consumers.twice: a consumer of this name is also in the database" in err


# -- the Admin API -------------------------------------------------------------------

@pytest.fixture
def admin(config_path):
    config = load_config(str(config_path))
    engine = open_engine(config.database, str(config_path))
    yield create_admin_app(config, engine, ["users", "orders"]).test_client()
    engine.dispose()


BEARER = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def test_admin_shapes_statuses_and_the_audit_log(admin):
    added = admin.post("/consumers", json={"name": "acme", "rate_limit": "10/second"},
                       headers=BEARER)
    assert added.status_code == 201
    assert set(added.json) == {"name", "plan", "rate_limit", "quota", "services", "metadata",
                                "created_at"}
    assert added.json["services"] is None and added.json["metadata"] == {}
    assert added.json["created_at"].endswith("Z")
    assert admin.get("/consumers", headers=BEARER).json == [added.json]
    assert admin.get("/consumers/acme", headers=BEARER).json == added.json
    issued = admin.post("/consumers/acme/keys", json={"label": "ci"}, headers=BEARER)
    assert issued.status_code == 201
    assert set(issued.json) == {"id", "consumer", "label", "hint", "created_at", "expires_at",
                                "last_used_at", "revoked_at", "key"}
    listed = admin.get("/consumers/acme/keys", headers=BEARER).json
    assert [set(k) for k in listed] == [set(issued.json) - {"key"}]
    rotated = admin.post(f"/keys/{issued.json['id']}/rotate", json={"grace_seconds": 60},
                         headers=BEARER)
    assert rotated.status_code == 201 and rotated.json["key"] != issued.json["key"]
    assert admin.delete(f"/keys/{rotated.json['id']}", headers=BEARER).status_code == 204
    patched = admin.patch("/consumers/acme", json={"metadata": {"plan": "x"}}, headers=BEARER)
    assert patched.status_code == 200 and patched.json["metadata"] == {"plan": "x"}
    assert admin.delete("/consumers/acme", headers=BEARER).status_code == 204
    audit = admin.get("/audit", headers=BEARER).json
    assert [(a["actor"], a["action"], a["consumer"]) for a in audit] == [
        ("ops", "consumer.add", "acme"), ("ops", "key.issue", "acme"),
        ("ops", "key.rotate", "acme"), ("ops", "key.revoke", "acme"),
        ("ops", "consumer.update", "acme"), ("ops", "consumer.remove", "acme")]
    assert audit[2]["key_id"] == rotated.json["id"]
    assert issued.json["key"] not in json.dumps(audit) and rotated.json["key"] not in \
        json.dumps(audit)
    assert all(set(a) == {"at", "actor", "action", "consumer", "key_id"} for a in audit)
    # since is inclusive
    since = audit[3]["at"]
    assert [a["action"] for a in admin.get(f"/audit?since={since}", headers=BEARER).json][0] \
        in ("key.issue", "consumer.add", "key.rotate", "key.revoke")
    assert admin.get("/audit?since=yesterday", headers=BEARER).status_code == 400
    document = admin.get("/openapi.json").json
    assert document["openapi"].startswith("3.") and "/consumers/{name}/keys" in document["paths"]


@pytest.mark.parametrize("body, pointer", [
    (b"not json", ""), (b"[1, 2]", ""), (b'{"name": "ok", "rate_limit": "often"}', "/rate_limit"),
    (b'{"name": "bad name!"}', "/name"), (b'{"name": "ok", "services": ["nope"]}', "/services/0"),
    (b'{"name": "ok", "colour": "red"}', "/colour"), (b'{"name": 5}', "/name"),
])
def test_admin_refuses_a_bad_body_with_its_pointer(admin, body, pointer):
    answer = admin.post("/consumers", data=body, headers={**BEARER,
                                                          "Content-Type": "application/json"})
    assert answer.status_code == 422, answer.json
    assert answer.json["error"] == "invalid_body" and answer.json["pointer"] == pointer
    assert set(answer.json) == {"error", "message", "request_id", "pointer"}


def test_admin_refuses_wrong_tokens_unknown_names_and_the_files_consumers(admin, caplog):
    assert admin.get("/consumers").status_code == 401
    wrong = admin.get("/consumers", headers={"Authorization": "Bearer guessed-token"})
    assert wrong.status_code == 401 and wrong.json["error"] == "unauthorized"
    assert "guessed-token" not in caplog.text and "refused GET /consumers" in caplog.text
    assert admin.get("/consumers/nobody", headers=BEARER).status_code == 404
    assert admin.delete("/keys/key_nothing", headers=BEARER).status_code == 404
    assert admin.post("/consumers/nobody/keys", headers=BEARER).status_code == 404
    assert admin.post("/consumers", json={"name": "dup"}, headers=BEARER).status_code == 201
    duplicate = admin.post("/consumers", json={"name": "dup"}, headers=BEARER)
    assert duplicate.status_code == 409 and duplicate.json["error"] == "already_exists"
    read_only = admin.patch("/consumers/filed", json={"rate_limit": "1/second"}, headers=BEARER)
    assert read_only.status_code == 409 and read_only.json["error"] == "read_only"
    assert admin.post("/consumers/dup/keys", json={"expires_at": "2020-01-01T00:00:00Z"},
                      headers=BEARER).json["pointer"] == "/expires_at"
    assert admin.post("/keys/key_x/rotate", json={"grace_seconds": -1},
                      headers=BEARER).json["pointer"] == "/grace_seconds"


def test_export_and_import_round_trip_and_a_clash_imports_nothing(config_path, tmp_path,
                                                                 upstream):
    run(config_path, "consumers", "add", "a", "--rate-limit", "5/second")
    run(config_path, "consumers", "add", "b")
    key = run(config_path, "keys", "issue", "a", "--expires", "30d")[1].strip()
    exported = run(config_path, "export")[1]
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    other = write_config(other_dir, upstream.url)
    run(other, "db", "upgrade")
    dump = tmp_path / "dump.json"
    dump.write_text(exported)
    assert run(other, "import", str(dump)) == (0, "2 consumer(s) imported\n", "")
    assert json.loads(run(other, "export")[1]) == json.loads(exported)
    # the key keeps working on the new database
    from gateway.app import create_app
    app = create_app(str(other))
    try:
        assert app.test_client().get("/users/echo", headers={"X-API-Key": key}).status_code \
            == 200
    finally:
        gateway_of(app).follower.stop()
    assert run(other, "import", str(dump)) == (
        1, "", "consumer(s) 'a', 'b' already exist: nothing was imported\n")


def test_the_installed_command_prints_the_key_alone_on_stdout(config_path):
    gateway = Path(sys.executable).parent / "gateway"
    subprocess.run([gateway, "consumers", "add", "p", "--config", config_path], check=True,
                   capture_output=True)
    issued = subprocess.run([gateway, "keys", "issue", "p", "--config", config_path],
                            capture_output=True, text=True)
    assert issued.returncode == 0 and issued.stderr == ""
    assert issued.stdout.count("\n") == 1 and issued.stdout.startswith("gw_")


def test_gateway_admin_runs_the_admin_api_alone(config_path):
    from tests.conftest import free_port, stop_group, wait_for_port

    run(config_path, "consumers", "add", "alone")
    port = free_port()
    process = subprocess.Popen([Path(sys.executable).parent / "gateway", "admin", "--config",
                                config_path, "--bind", f"127.0.0.1:{port}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        wait_for_port(port, process, timeout=60)
        import requests
        # (Connection: close: a kept-alive connection would hold the stop below for its
        # keep-alive timeout)
        close = {**BEARER, "Connection": "close"}
        listed = requests.get(f"http://127.0.0.1:{port}/consumers", headers=close, timeout=10)
        assert listed.status_code == 200 and [c["name"] for c in listed.json()] == ["alone"]
        assert requests.get(f"http://127.0.0.1:{port}/users/echo", headers=close,
                            timeout=10).status_code == 404  # no gateway routes here
    finally:
        stop_group(process)
