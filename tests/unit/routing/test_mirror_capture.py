"""What the mirror copies of a request body, and what the primary still gets."""

from __future__ import annotations

import pytest

from gateway.config import parse_config
from gateway.routing.mirror import Mirror

pytestmark = pytest.mark.unit


@pytest.fixture
def mirror():
    config = parse_config({"services": {"orders": {
        "upstream": "http://127.0.0.1:9", "mirror": {"upstream": "http://127.0.0.1:9",
                                                     "max_body_bytes": 10}}}})
    return Mirror(config.services["orders"], pool_size=2)


def test_no_body_and_small_bodies_are_copied(mirror):
    assert mirror.capture(None, False, None) == (None, False, None)
    assert mirror.capture(b"0123456789", False, 10) == (b"0123456789", False, b"0123456789")


def test_a_body_over_the_cap_by_its_length_is_not_read(mirror):
    stream = iter([b"x" * 11])
    body, chunked, copy = mirror.capture(stream, False, 11)
    assert body is stream and copy is None  # untouched: the primary reads it as it comes


def test_a_chunked_body_is_read_up_to_the_cap_and_the_primary_gets_all_of_it(mirror):
    body, chunked, copy = mirror.capture(iter([b"abc", b"def"]), True, None)
    assert (body, chunked, copy) == (b"abcdef", False, b"abcdef")  # whole: sent with a length
    body, chunked, copy = mirror.capture(iter([b"abcdef", b"ghijkl", b"mn"]), True, None)
    assert copy is None and chunked and b"".join(body) == b"abcdefghijklmn"
