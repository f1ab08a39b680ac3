"""One request body, read at most once, whoever asks first (routing/requestbody.py)."""

from __future__ import annotations

import io

import pytest

from gateway.errors import GatewayError
from gateway.routing.requestbody import RequestBody, TooLarge, buffer_limit

pytestmark = pytest.mark.unit


class CountingStream(io.BytesIO):
    def __init__(self, data: bytes):
        super().__init__(data)
        self.reads = 0

    def read(self, size: int = -1) -> bytes:
        self.reads += 1
        return super().read(size)


def test_read_once_for_everyone_who_asks():
    stream = CountingStream(b'{"a": 1}')
    body = RequestBody({"CONTENT_LENGTH": "8"}, stream)
    assert body.whole(100) == b'{"a": 1}'
    reads = stream.reads
    assert body.whole(100) == b'{"a": 1}' and body.for_upstream() == (b'{"a": 1}', False)
    assert stream.reads == reads


def test_too_large_keeps_what_was_read_and_the_rest_follows():
    body = RequestBody({"HTTP_TRANSFER_ENCODING": "chunked"}, io.BytesIO(b"x" * 100))
    with pytest.raises(TooLarge):
        body.whole(10)
    sent, chunked = body.for_upstream()
    assert chunked and b"".join(sent) == b"x" * 100


def test_an_announced_length_over_the_cap_is_refused_without_reading():
    stream = io.BytesIO(b"y" * 50)
    body = RequestBody({"CONTENT_LENGTH": "50"}, stream)
    with pytest.raises(TooLarge):
        body.whole(10)
    assert stream.tell() == 0
    sent, chunked = body.for_upstream()
    assert not chunked and b"".join(sent) == b"y" * 50


def test_a_body_cut_short_is_a_400_whoever_reads_it():
    body = RequestBody({"CONTENT_LENGTH": "10"}, io.BytesIO(b"abc"))
    with pytest.raises(GatewayError) as cut:
        body.whole(100)
    assert cut.value.code == "incomplete_body"
    streamed = RequestBody({"CONTENT_LENGTH": "10"}, io.BytesIO(b"abc"))
    sent, _ = streamed.for_upstream()
    with pytest.raises(GatewayError):
        b"".join(sent)


def test_no_body():
    for environ in ({}, {"CONTENT_LENGTH": "0"}, {"CONTENT_LENGTH": ""}):
        body = RequestBody(environ, io.BytesIO(b"ignored"))
        assert not body.present and body.whole(10) is None
        assert body.for_upstream() == (None, False)


def test_one_cap_the_routes_max_body_bytes_else_1_mib():
    assert buffer_limit(None) == 1024 * 1024 and buffer_limit(5000) == 5000
