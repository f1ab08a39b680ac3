"""What the response cache may store, and for how long (no store, no network)."""

from __future__ import annotations

import pytest
from flask import Response

from gateway.config import CacheConfig
from gateway.policies.cache import Entry, MemoryStore, ResponseCache


def cache(**config) -> ResponseCache:
    return ResponseCache("users", CacheConfig.model_validate({"ttl": 30, **config}),
                         MemoryStore(), by_consumer=False)


@pytest.mark.parametrize("status,headers,ttl", [
    (200, {}, 30.0),
    (200, {"Cache-Control": "max-age=5"}, 5.0),
    (200, {"Cache-Control": "public, s-maxage=7, max-age=5"}, 7.0),
    (200, {"Cache-Control": "max-age=300"}, 30.0),          # never longer than the route's ttl
    (200, {"Cache-Control": "no-store"}, None),
    (200, {"Cache-Control": "private"}, None),
    (200, {"Cache-Control": "no-cache"}, None),
    (200, {"Set-Cookie": "a=b"}, None),
    (200, {"Vary": "*"}, None),
    (500, {}, None),
    (404, {}, 30.0),                                        # as nginx: 200, 301, 404 by default
    (200, {"Cache-Control": "max-age=0"}, None),
])
def test_what_may_be_stored(status, headers, ttl):
    assert cache().storable_for(Response(b"x", status=status, headers=headers)) == ttl


def test_a_body_over_max_body_bytes_is_not_stored():
    assert cache(max_body_bytes=10).storable_for(
        Response(b"x" * 11, headers={"Content-Length": "11"})) is None


def test_entries_survive_their_json_form():
    entry = Entry(200, "OK", [("Content-Type", "application/json")], b"\x00\xffbody", 1.5, 30.0,
                  {"Accept": "text/plain"})
    assert Entry.from_json(entry.to_json()) == entry
