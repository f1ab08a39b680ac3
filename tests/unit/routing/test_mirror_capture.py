"""What the mirror copies of a request body, and what the primary still gets: one
RequestBody read once (routing/requestbody.py)."""

from __future__ import annotations

import io

import pytest

from gateway.config import parse_config
from gateway.routing.mirror import Mirror
from gateway.routing.requestbody import RequestBody

pytestmark = pytest.mark.unit


@pytest.fixture
def mirror():
    config = parse_config({"services": {"orders": {
        "upstream": "http://127.0.0.1:9", "mirror": {"upstream": "http://127.0.0.1:9",
                                                     "max_body_bytes": 10}}}})
    return Mirror(config.services["orders"], pool_size=2)


def body(data: bytes, chunked: bool = False) -> RequestBody:
    environ = {"HTTP_TRANSFER_ENCODING": "chunked"} if chunked else \
        {"CONTENT_LENGTH": str(len(data))}
    return RequestBody(environ, io.BytesIO(data))


def primary_and_copy(mirror: Mirror, request: RequestBody):
    mirror.read_for_copy(request, limit=1024 * 1024)
    sent, chunked = request.for_upstream()
    whole = sent if isinstance(sent, bytes) or sent is None else b"".join(sent)
    return whole, chunked, mirror.copy_of(sent)


def test_no_body_and_small_bodies_are_copied(mirror):
    assert primary_and_copy(mirror, RequestBody({}, io.BytesIO())) == (None, False, None)
    assert primary_and_copy(mirror, body(b"0123456789")) == (b"0123456789", False, b"0123456789")
    assert primary_and_copy(mirror, body(b"abcdef", chunked=True)) == (b"abcdef", False, b"abcdef")


def test_a_body_over_the_cap_by_its_length_is_not_read_and_goes_on_whole(mirror):
    stream = io.BytesIO(b"x" * 11)
    request = RequestBody({"CONTENT_LENGTH": "11"}, stream)
    mirror.read_for_copy(request, limit=1024 * 1024)
    assert stream.tell() == 0  # not read: the primary reads it as it comes
    assert primary_and_copy(mirror, request) == (b"x" * 11, False, None)


def test_a_chunked_body_over_the_cap_goes_to_the_primary_whole_and_chunked(mirror):
    assert primary_and_copy(mirror, body(b"abcdefghijklmn", chunked=True)) == (
        b"abcdefghijklmn", True, None)
