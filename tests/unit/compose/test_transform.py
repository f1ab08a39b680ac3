"""A service's transform on the way out: one function for the proxy and aggregate calls."""

from __future__ import annotations

import json

import pytest

from gateway.compose.transform import Transformer
from gateway.config.transforms import TransformConfig
from gateway.errors import GatewayError


def transformer(**config) -> Transformer:
    return Transformer("legacy", TransformConfig.model_validate(config))


def test_headers_query_and_body_are_reshaped_with_a_length_of_their_own():
    t = transformer(request={"headers": {"remove": ["X-Debug"], "add": {"X-Version": "2"}},
                             "query": {"rename": {"q": "search"}},
                             "body": "{customer: customer_id, items: [sku]}"},
                    response={"body": "{id: order_id}"})
    headers, query, body = t.outgoing(
        {"X-Debug": "1", "Content-Type": "text/plain", "Content-Length": "99"}, "q=shoes&page=2",
        b'{"customer_id": 7, "sku": 3}')
    assert json.loads(body) == {"customer": 7, "items": [3]}
    assert headers == {"X-Version": "2", "Accept-Encoding": "identity",
                       "Content-Type": "application/json", "Content-Length": str(len(body))}
    assert query == "search=shoes&page=2"


def test_a_body_is_left_as_it_is_without_a_body_expression():
    stream = iter([b"chunk"])
    _, _, body = transformer(request={"headers": {"add": {"A": "b"}}}).outgoing({}, "", stream)
    assert body is stream


def test_a_body_the_expression_cannot_read_is_a_400():
    with pytest.raises(GatewayError) as refused:
        transformer(request={"body": "{a: a}"}).outgoing({}, "", b"not json")
    assert refused.value.status == 400 and refused.value.code == "invalid_body"
