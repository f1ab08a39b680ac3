"""The response cache: what is stored, what is served, and the headers that say so."""

from __future__ import annotations

import time

import pytest

from tests.conftest import raw_request
from tests.upstream import CacheUpstream


@pytest.fixture
def origin(serve):
    return serve(CacheUpstream("cache"))


@pytest.fixture
def gw(make_gateway, origin, storage):
    return make_gateway({"storage": storage,
                         "consumers": {"alice": {"keys": ["a-key"]}, "bob": {"keys": ["b-key"]}},
                         "services": {
                             "c": {"upstream": origin.url, "cache": {"ttl": 30, "max_body_bytes": 5000}},
                             "keyed": {"upstream": origin.url, "auth": "api_key", "cache": {"ttl": 30}},
                         }})


def get(gw, target, method="GET", **headers):
    resp = raw_request(gw.port, method, target, headers=headers)
    # an answer is stored as its last byte goes out; the server thread may
    # still be finishing it when the client already has everything
    time.sleep(0.02)
    return resp


def serial(resp) -> str:
    return resp.header("X-Serial")


def test_miss_then_hit_with_age(gw):
    # (TTLs, max-age and Age's growth run on a moved clock: tests/unit/policies/test_cache_clock.py)
    first = get(gw, "/c/item?x=1")
    assert first.header("X-Cache-Status") == "MISS" and first.header("Age") == "0"
    second = get(gw, "/c/item?x=1")
    assert second.header("X-Cache-Status") == "HIT"
    assert serial(second) == serial(first) and second.body == first.body
    assert int(second.header("Age")) >= 0


def test_query_order_does_not_matter_but_values_do(gw):
    first = get(gw, "/c/q?a=1&b=2")
    assert get(gw, "/c/q?b=2&a=1").header("X-Cache-Status") == "HIT"
    other = get(gw, "/c/q?a=1&b=3")
    assert other.header("X-Cache-Status") == "MISS" and serial(other) != serial(first)


def test_head_is_cached_separately(gw):
    get(gw, "/c/h")
    head = get(gw, "/c/h", method="HEAD")
    assert head.header("X-Cache-Status") == "MISS" and head.body == b""
    again = get(gw, "/c/h", method="HEAD")
    assert again.header("X-Cache-Status") == "HIT"
    assert again.header("Content-Length") == head.header("Content-Length") != "0"


def test_post_bypasses(gw):
    resp = raw_request(gw.port, "POST", "/c/p", body=b"x")
    assert resp.header("X-Cache-Status") == "BYPASS" and resp.header("Age") == "0"


@pytest.mark.parametrize("status,stored", [(200, True), (203, True), (204, True), (301, True),
                                           (404, True), (410, True), (500, False), (302, False),
                                           (201, False)])
def test_default_statuses(gw, status, stored):
    target = f"/c/s?status={status}"
    get(gw, target)
    assert get(gw, target).header("X-Cache-Status") == ("HIT" if stored else "MISS")


@pytest.mark.parametrize("query", ["cc=no-store", "cc=private", "cc=no-cache", "cc=max-age%3D0",
                                   "cookie=1", "vary=*", "size=6000", "size=6000&chunked=1"])
def test_not_stored(gw, query):
    get(gw, f"/c/n?{query}")
    assert get(gw, f"/c/n?{query}").header("X-Cache-Status") == "MISS"


def test_streamed_body_under_the_cap_is_stored(gw):
    first = get(gw, "/c/n?size=4000&chunked=1")
    second = get(gw, "/c/n?size=4000&chunked=1")
    assert second.header("X-Cache-Status") == "HIT" and second.body == first.body == b"x" * 4000


def test_redis_keeps_an_entry_for_its_ttl_or_max_age(make_gateway, origin, redis_url):
    """In Redis an entry's life is the key's own expiry: read it, no sleeping."""
    import redis
    gw = make_gateway({"storage": redis_url, "services": {
        "c": {"upstream": origin.url, "cache": {"ttl": 30}}}})
    get(gw, "/c/m?cc=max-age%3D5")
    get(gw, "/c/t")
    client = redis.Redis.from_url(redis_url)
    ttls = {key.decode().rsplit("\n", 2)[1]: client.pttl(key)
            for key in client.scan_iter("gateway:cache:c:*")}
    assert 0 < ttls["/c/m"] <= 5000 and 5000 < ttls["/c/t"] <= 30000


def test_client_no_cache_bypasses_and_refreshes(gw):
    first = get(gw, "/c/r")
    fresh = get(gw, "/c/r", **{"Cache-Control": "no-cache"})
    assert fresh.header("X-Cache-Status") == "BYPASS" and serial(fresh) != serial(first)
    assert serial(get(gw, "/c/r")) == serial(fresh)  # the refreshed answer was stored


def test_client_no_store_bypasses(gw):
    get(gw, "/c/ns")
    assert get(gw, "/c/ns", **{"Cache-Control": "no-store"}).header("X-Cache-Status") == "BYPASS"


def test_vary_headers_split_the_entry(gw):
    en = get(gw, "/c/v?vary=Accept-Language", **{"Accept-Language": "en"})
    assert get(gw, "/c/v?vary=Accept-Language", **{"Accept-Language": "en"}).header(
        "X-Cache-Status") == "HIT"
    fr = get(gw, "/c/v?vary=Accept-Language", **{"Accept-Language": "fr"})
    assert fr.header("X-Cache-Status") == "MISS" and b"fr" in fr.body and b"en" in en.body


def test_consumers_do_not_share_entries(gw):
    a = get(gw, "/keyed/k", **{"X-API-Key": "a-key"})
    b = get(gw, "/keyed/k", **{"X-API-Key": "b-key"})
    assert b.header("X-Cache-Status") == "MISS" and serial(a) != serial(b)
    assert get(gw, "/keyed/k", **{"X-API-Key": "a-key"}).header("X-Cache-Status") == "HIT"


def test_hit_does_not_touch_upstream(gw, origin):
    get(gw, "/c/u")
    hits = origin.app.hits
    for _ in range(3):
        get(gw, "/c/u")
    assert origin.app.hits == hits


def test_cache_metrics(gw):
    get(gw, "/c/metric")
    get(gw, "/c/metric")
    text = gw.client.get("/metrics").get_data(as_text=True)
    assert 'gateway_cache_total{result="hit",service="c"}' in text
    assert 'gateway_cache_total{result="miss",service="c"}' in text


def test_an_upgrade_header_that_is_no_handshake_does_not_bypass_the_cache(gw):
    first = get(gw, "/c/upgrade")
    again = get(gw, "/c/upgrade", Upgrade="h2c", Connection="Upgrade")
    assert again.header("X-Cache-Status") == "HIT" and serial(again) == serial(first)
