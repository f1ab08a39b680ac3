"""The path and header rules of routing/paths.py and routing/headers.py, without a server."""

from __future__ import annotations

import pytest

from gateway.errors import GatewayError
from gateway.routing.headers import (
    DROP_FROM_REQUEST,
    DROP_FROM_RESPONSE,
    connection_listed,
    end_to_end,
    header_tokens,
)
from gateway.routing.paths import check_path, prefix_segments, raw_target, service_path, strip_segments

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("environ, target", [
    ({"RAW_URI": "/a%2Fb?x=1%202"}, "/a%2Fb?x=1%202"),            # never decoded nor re-encoded
    ({"REQUEST_URI": "/r"}, "/r"),
    ({"PATH_INFO": "/a b", "QUERY_STRING": "q=1"}, "/a%20b?q=1"),  # rebuilt when no raw form
    ({"RAW_URI": "http://host:80/p?q"}, "/p?q"),                 # absolute-form: path and query
    ({"RAW_URI": "/p#frag"}, "/p"),                               # the fragment stays home
    ({"RAW_URI": "/caf\xc3\xa9"}, "/caf%C3%A9"),                  # raw non-ASCII bytes quoted
])
def test_the_raw_target(environ, target):
    assert raw_target(environ) == target


@pytest.mark.parametrize("path", ["/a/../b", "/a/./b", "/a//b", "/a/..", "/a\\..\\b", "/a\x00"])
def test_paths_that_normalise_elsewhere_are_refused(path):
    with pytest.raises(GatewayError) as refused:
        check_path(path)
    assert refused.value.code == "bad_path"


@pytest.mark.parametrize("path", ["/", "/a/b/", "/a/b.c", "/a/..b", "/a/.b"])
def test_plain_paths_pass(path):
    check_path(path)


@pytest.mark.parametrize("prefix, strip, path, expected", [
    ("/users", True, "/users/1?x", "/1?x"),
    ("/users", True, "/users", "/"),
    ("/api/v1/orders", True, "/api/v1/orders/7/items", "/7/items"),
    ("/users", False, "/users/1", "/users/1"),
    ("/", True, "/anything", "/anything"),
    ("/users", True, "/users/a%2Fb", "/a%2Fb"),  # by segments of the raw path
])
def test_strip_prefix_drops_whole_segments(prefix, strip, path, expected):
    assert strip_segments(path, prefix_segments(prefix, strip)) == expected


def test_validation_sees_the_stripped_path_decoded():
    environ = {"RAW_URI": "/orders/caf%C3%A9/x?y=1"}
    assert service_path(environ, prefix_segments("/orders", True)) == "/café/x"


@pytest.mark.parametrize("value, tokens", [
    ("keep-alive, Upgrade", ["keep-alive", "Upgrade"]),
    (" a ,, b ", ["a", "b"]),
    (None, []),
])
def test_header_tokens(value, tokens):
    assert header_tokens(value) == tokens


def test_hop_by_hop_and_connection_listed_headers_never_cross():
    headers = [("Keep-Alive", "5"), ("X-Secret-Hop", "1"), ("X-Kept", "a"), ("X-Kept", "b"),
               ("Transfer-Encoding", "chunked"), ("Date", "x"), ("Server", "y")]
    assert end_to_end(headers, DROP_FROM_RESPONSE, "close, X-Secret-Hop") == [
        ("X-Kept", "a"), ("X-Kept", "b")]
    assert connection_listed("Keep-Alive, X-Request-ID") == {"keep-alive", "x-request-id"}
    assert {"host", "x-forwarded-for", "x-consumer", "upgrade"} <= DROP_FROM_REQUEST
