"""Config loading and validation: every mistake is named by its key path."""

from __future__ import annotations

import pytest

from gateway import ConfigError, create_app
from gateway.config import ALL_METHODS, load_config, parse_config


def problems(raw) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(raw)
    return info.value.problems


def test_defaults_are_filled_in():
    config = parse_config({"services": {"users": {"upstream": "http://127.0.0.1:9001/"}}})
    users = config.services["users"]
    assert config.storage == "memory://" and config.trusted_proxies == 0
    assert users.prefix == "/users" and users.upstreams == ("http://127.0.0.1:9001",)
    assert users.methods == ALL_METHODS and users.retries == 2 and not users.strip_prefix
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


def test_missing_file_says_how_to_fix(tmp_path):
    with pytest.raises(ConfigError, match="GATEWAY_CONFIG"):
        load_config(str(tmp_path / "absent.yaml"))


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
