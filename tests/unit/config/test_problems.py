"""Config mistakes are named by key path, with the fix (no files but tmp ones, no network)."""

from __future__ import annotations

import io

import pytest

from gateway.config import ConfigError, parse_config
from gateway.config.loader import read_yaml


def test_duplicate_keys_at_every_depth_name_the_path_and_both_lines():
    text = ("services:\n"
            "  orders: http://127.0.0.1:9001\n"
            "  users:\n"
            "    upstream: http://127.0.0.1:9002\n"
            "    timeout: {read: 5}\n"
            "    timeout: {read: 6}\n"
            "  orders: http://127.0.0.1:9003\n"
            "aggregates:\n"
            "  - path: /a\n"
            "    path: /b\n")
    _, problems = read_yaml(io.StringIO(text))
    assert problems == [
        "services.users.timeout: the key 'timeout' is given twice (lines 5 and 6); YAML keeps "
        "only the last, so merge the two or rename one",
        "services.orders: the key 'orders' is given twice (lines 2 and 7); YAML keeps only the "
        "last, so merge the two or rename one",
        "aggregates[0].path: the key 'path' is given twice (lines 9 and 10); YAML keeps only "
        "the last, so merge the two or rename one"]


def test_merge_keys_and_equal_keys_in_different_mappings_are_fine():
    text = ("base: &base {timeout: {read: 5}}\n"
            "services:\n"
            "  a: {<<: *base, upstream: http://x}\n"
            "  b: {upstream: http://y, timeout: {read: 1}}\n")
    document, problems = read_yaml(io.StringIO(text))
    assert problems == [] and document["services"]["a"]["timeout"] == {"read": 5}


@pytest.mark.parametrize("raw,problem", [
    ({"services": {"u": {"upstream": "htp://x"}}}, "services.u.upstream: 'htp://x' is not an http(s) URL"),
    ({"services": {"u": {"upstream": "http://x", "retries": "lots"}}},
     "services.u.retries: expected a whole number"),
    ({"services": {"u": "http://x", "v": {"upstream": "http://y", "prefix": "/u"}}},
     "services.v.prefix: '/u' is already the prefix of service 'u'"),
    ({"services": {"u": {"upstream": "http://x", "auth": "jwt"}}}, "services.u.auth: jwt, but no issuers"),
    ({"services": {"u": {"upstream": "http://x", "timout": 3}}}, "did you mean 'timeout'?"),
    ({"quota": {"mode": "lease"}, "rate_limit_strategy": "moving-window", "services": {"u": "http://x"}},
     "quota.mode: lease counts fixed windows"),
    ({"storage": "redis+cluster://a:b,c:1", "services": {"u": "http://x"}},
     "storage: 'redis+cluster://a:b,c:1': 'a:b' is not host:port"),
    ({"storage": "redis+sentinel://127.0.0.1:26379", "services": {"u": "http://x"}},
     "names no service after the sentinels"),
    ({"quota": {"mode": "leased"}, "services": {"u": "http://x"}},
     "quota.mode: 'leased' is not one of 'exact' or 'lease'"),
])
def test_each_mistake_is_named(raw, problem):
    with pytest.raises(ConfigError) as refused:
        parse_config(raw)
    assert any(problem in p for p in refused.value.problems), refused.value.problems
