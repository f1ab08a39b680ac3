"""An upstream answer's Content-Length: one the client can trust, or a 502."""

from __future__ import annotations

import pytest

from gateway.errors import GatewayError
from gateway.routing.proxy import _checked_length

pytestmark = pytest.mark.unit


class FakeAnswer:
    def __init__(self, **headers):
        self.headers = {k.lower().replace("_", "-"): v for k, v in headers.items()}
        self.discarded = False

    def discard(self):
        self.discarded = True


def given(**headers):
    answer = FakeAnswer(**headers)
    listed = [(k.replace("_", "-"), v) for k, v in headers.items()]
    return answer, listed


@pytest.mark.parametrize("length", ["0", "42", "42, 42", " 7 "])
def test_one_number_passes(length):
    answer, headers = given(Content_Length=length)
    assert _checked_length(answer, headers) == headers


@pytest.mark.parametrize("length", ["42, 43", "-1", "4 2", "0x10", "", "1e3"])
def test_anything_else_is_a_502_and_the_answer_is_dropped(length):
    answer, headers = given(Content_Length=length)
    with pytest.raises(GatewayError) as refused:
        _checked_length(answer, headers)
    assert (refused.value.status, refused.value.code) == (502, "bad_gateway")
    assert answer.discarded


def test_a_chunked_answer_loses_its_content_length():
    answer, headers = given(Transfer_Encoding="chunked", Content_Length="5", X_Other="1")
    assert _checked_length(answer, headers) == [("Transfer-Encoding", "chunked"),
                                                ("X-Other", "1")]
