"""Config loading and validation: every mistake is named by its key path."""

from __future__ import annotations

import pytest

from gateway.app import create_app
from gateway.config import ALL_METHODS, ConfigError, hash_key, load_config, parse_config
from gateway.routing import CONFIG_CHECKS
from tests.conftest import ROOT


def problems(raw) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(raw, checks=CONFIG_CHECKS)
    return info.value.problems


def test_defaults_are_filled_in():
    config = parse_config({"services": {"users": {"upstream": "http://127.0.0.1:9001/"}}})
    users = config.services["users"]
    assert config.storage == "memory://" and config.trusted_proxies == 0
    assert users.prefix == "/users" and users.upstreams == ("http://127.0.0.1:9001",)
    assert tuple(users.methods) == ALL_METHODS and users.retries == 2 and not users.strip_prefix
    assert (users.timeout.connect, users.timeout.read) == (2.0, 30.0)


def test_upstream_list_and_shorthand():
    config = parse_config({"services": {
        "users": {"upstream": ["http://a:1", "https://b:2/base"]}, "orders": "http://c:3"}})
    assert config.services["users"].upstreams == ("http://a:1", "https://b:2/base")
    assert config.services["orders"].upstreams == ("http://c:3",)


@pytest.mark.parametrize("raw,expected", [
    ({"services": {"users": {"upstream": "htp://x"}}},
     "services.users.upstream: 'htp://x' is not an http(s) URL"),
    ({"services": {"users": {"upstream": ["http://ok:1", "nope"]}}},
     "services.users.upstream[1]: 'nope' is not an http(s) URL"),
    ({"services": {"users": {}}}, "services.users.upstream: is required"),
    ({"services": {"users": {"upstream": "http://x", "prefix": "users"}}},
     "services.users.prefix: 'users' is not a path prefix"),
    ({"services": {"users": {"upstream": "http://x", "methods": ["GET", "BREW"]}}},
     "services.users.methods[1]: 'BREW' is not one of"),
    ({"services": {"users": {"upstream": "http://x", "retries": -1}}},
     "services.users.retries: -1 is out of range"),
    ({"services": {"users": {"upstream": "http://x", "timeout": {"connect": 0}}}},
     "services.users.timeout.connect: expected a positive number of seconds"),
    ({"services": {"users": {"upstream": "http://x", "strip_prefix": "yes"}}},
     "services.users.strip_prefix: expected true or false"),
    ({"services": {"users": {"upstream": "http://x", "upstreams": "http://y"}}},
     "services.users.upstreams: unknown key; did you mean 'upstream'?"),
    ({"servises": {}}, "servises: unknown key; did you mean 'services'?"),
    ({"services": {}}, "services: expected a mapping of at least one service"),
    ({"storage": "mongodb://x", "services": {"u": "http://x"}}, "storage: 'mongodb://x' is not a storage URI"),
    ({"trusted_proxies": "one", "services": {"u": "http://x"}}, "trusted_proxies: expected a whole number"),
    ({"services": {"a": {"upstream": "http://x", "prefix": "/p"},
                   "b": {"upstream": "http://y", "prefix": "/p/"}}},
     "services.b.prefix: '/p' is already the prefix of service 'a'"),
    ({"services": {"healthz": "http://x"}}, "services.healthz.prefix: /healthz is served by the gateway"),
    ({"services": {"bad.name": "http://x"}}, "services.bad.name: a service name starts with a letter"),
    ({"services": {"u": "http://x"}, "blueprints": ["no_colon"]},
     "blueprints[0]: 'no_colon' is not of the form 'package.module:name'"),
    ([1, 2], "<top>: expected a mapping of settings, got a list"),
])
def test_mistakes_name_the_key_and_the_fix(raw, expected):
    found = problems(raw)
    assert any(p.startswith(expected) for p in found), found


def test_all_problems_are_reported_at_once():
    found = problems({"services": {"a": {"upstream": "ftp://x", "retries": "2"},
                                   "b": {"upstream": "http://y", "methods": ["NOPE"]}}})
    assert len(found) == 3


def test_env_vars_are_substituted(monkeypatch):
    monkeypatch.setenv("USERS_HOST", "10.1.2.3")
    config = parse_config({"services": {"users": {
        "upstream": "http://${USERS_HOST}:${USERS_PORT:-9001}"}}})
    assert config.services["users"].upstreams == ("http://10.1.2.3:9001",)


def test_missing_env_var_is_an_error(monkeypatch):
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    found = problems({"services": {"users": {"upstream": "http://${NOT_SET_ANYWHERE}"}}})
    assert found[0].startswith("services.users.upstream: environment variable NOT_SET_ANYWHERE is not set")


def test_load_from_file_and_env(tmp_path, monkeypatch):
    path = tmp_path / "gw.yaml"
    path.write_text("services:\n  users:\n    upstream: http://127.0.0.1:9001\n")
    monkeypatch.setenv("GATEWAY_CONFIG", str(path))
    assert load_config().source == str(path)
    assert "users" in create_app().blueprints


def test_missing_file_says_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("GATEWAY_CONFIG", str(tmp_path / "absent.yaml"))
    with pytest.raises(ConfigError, match="does not exist: set GATEWAY_CONFIG to your gateway.yaml"):
        load_config()
    with pytest.raises(ConfigError, match="check the path given to --config") as info:
        load_config(str(tmp_path / "absent.yaml"), named_by="--config")
    assert "GATEWAY_CONFIG" not in str(info.value)


def test_directory_or_non_utf8_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="is a directory, not a YAML file"):
        load_config(str(tmp_path))
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("services:\n  caf\xe9: http://127.0.0.1:9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"is not UTF-8 text \(byte 0xe9 at offset 15\)"):
        load_config(str(latin1))


def test_invalid_yaml_is_reported(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("services: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(str(path))


def test_blueprint_that_does_not_import_stops_the_start():
    with pytest.raises(ConfigError, match=r"blueprints\[0\]: cannot import 'nowhere.at_all'"):
        create_app({"services": {"u": "http://127.0.0.1:9"}, "blueprints": ["nowhere.at_all:bp"]})
    with pytest.raises(ConfigError, match="is not a flask.Blueprint"):
        create_app({"services": {"u": "http://127.0.0.1:9"}, "blueprints": ["gateway.config:re"]})


@pytest.mark.parametrize("raw,expected", [
    ({"services": {"users": "http://x"}, "consumers": {"alice": {"keys": ["k"], "services": ["userz"]}}},
     "consumers.alice.services: 'userz' is neither a service nor a blueprint (known: users)"),
    ({"services": {"sample": "http://x"}, "blueprints": ["tests.sample_blueprints:bp"]},
     "blueprints[0]: blueprint 'sample' has the name of a service; rename one of them"),
    ({"services": {"u": "http://x"},
      "blueprints": ["tests.sample_blueprints:bp", {"blueprint": "tests.sample_blueprints:bp"}]},
     "blueprints[1]: blueprint 'sample' is already registered by blueprints[0]"),
    ({"services": {"u": "http://x"}, "blueprints": ["tests.sample_blueprints:reserved"]},
     "blueprints[0]: blueprint 'reserved' has a route on /metrics"),
    ({"services": {"u": "http://x"}, "consumers": {"a": {"keys": ["k1"]}, "b": {"keys": ["k1"]}}},
     "consumers.b.keys[0]: the same key belongs to consumer 'a'"),
    ({"services": {"u": "http://x"}, "consumers": {"a": {"keys": ["sha256:abc"]}}},
     "consumers.a.keys[0]: a hashed key is 'sha256:' and 64 hex digits"),
    ({"services": {"u": {"upstream": "http://x", "cache": {}}}},
     "services.u.cache.ttl: is required: how many seconds"),
    ({"services": {"u": {"upstream": "http://x", "auth": "oauth"}}},
     "services.u.auth: 'oauth' is not one of none, api_key, jwt"),
    ({"services": {"u": {"upstream": "http://x", "auth": "jwt"}}},
     "services.u.auth: jwt, but no issuers are configured"),
    ({"services": {"u": {"upstream": "http://x", "allow_ips": ["10.0.0.0/33"]}}},
     "services.u.allow_ips[0]: '10.0.0.0/33' is not an IP address or CIDR range"),
    ({"services": {"u": {"upstream": "http://x", "rate_limit": "lots"}}},
     "services.u.rate_limit: 'lots' is not a rate limit"),
    ({"services": {"u": {"upstream": "http://x", "cors": {"origins": ["http://a/b"]}}}},
     "services.u.cors.origins[0]: 'http://a/b' is not an origin"),
    ({"services": {"u": {"upstream": "http://x", "timeout": "soon"}}},
     "services.u.timeout: expected {connect: seconds, read: seconds} or a number of seconds, "
     "got a string"),
    ({"services": {"u": {"upstream": 5}}},
     "services.u.upstream: expected an http(s) URL or a list of them, got a number"),
    ({"services": {1: "http://x"}}, "services.1: expected a string, got a number"),
    ({"services": {"gateway_health": "http://x"}},
     "services.gateway_health: the name 'gateway_health' is the gateway's own"),
    ({"storage": "redis://localhost:port/0", "services": {"u": "http://x"}},
     "storage: 'redis://localhost:port/0' has an invalid port"),
    ({"storage": "redis://localhost:6379/zero", "services": {"u": "http://x"}},
     "storage: 'redis://localhost:6379/zero': the database after the port is a number"),
    ({"services": {"u": {"upstream": "http://x", "cahce": {"ttl": 1}}}},
     "services.u.cahce: unknown key; did you mean 'cache'?"),
    ({"services": {"u": "http://x"}, "blueprints": [{"blueprint": "a.b:c", "auht": "api_key"}]},
     "blueprints[0].auht: unknown key; did you mean 'auth'?"),
])
def test_references_and_sections_are_checked_with_key_paths(raw, expected):
    found = problems(raw)
    assert any(p.startswith(expected) for p in found), found


def test_plain_keys_are_hashed_at_load_and_counted():
    config = parse_config({"services": {"u": "http://x"},
                           "consumers": {"a": {"keys": ["plain", "sha256:" + "A" * 64]}}})
    (consumer,) = config.consumers.values()
    assert consumer.plain_keys == 1 and "plain" not in repr(config)
    assert consumer.key_hashes == {hash_key("plain"), "sha256:" + "a" * 64}


def test_schema_accepts_the_example_and_refuses_a_typo():
    import jsonschema
    import yaml

    from gateway.config import GatewayConfig
    schema = GatewayConfig.model_json_schema()
    example = yaml.safe_load((ROOT / "examples" / "gateway.yaml").read_text())
    jsonschema.validate(example, schema)
    example["services"]["users"]["rate_limt"] = "1/second"
    with pytest.raises(jsonschema.ValidationError, match="rate_limt"):
        jsonschema.validate(example, schema)


def test_reserved_names_are_the_gateway_endpoints():
    from gateway.config.checks import RESERVED_NAMES
    from gateway.endpoints import BLUEPRINTS
    assert set(RESERVED_NAMES) == {bp.name for bp in BLUEPRINTS}
