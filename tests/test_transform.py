"""``transform:``: headers, query and JSON bodies reshaped on the way through, against a real backend."""

from __future__ import annotations

import json

import pytest
import requests

from gateway.config import ConfigError, parse_config
from tests.backends import shop_backend

LEGACY = {"id": 42, "customer_name": "Ada", "customer_email": "ada@example.com",
          "products": [1, 2], "debug": True}


@pytest.fixture
def backend(serve):
    return serve(shop_backend("orders"))


def orders_config(backend, **transform) -> dict:
    return {"services": {"orders": {"upstream": backend.url, "strip_prefix": True,
                                  "transform": transform}}}


def test_request_headers_and_query_are_edited_by_name(make_gateway, backend):
    gw = make_gateway(orders_config(backend, request={
        "headers": {"add": {"X-Source": "gateway"}, "remove": ["X-Debug"],
                    "rename": {"X-Old": "X-New"}},
        "query": {"add": {"version": "2"}, "remove": ["debug"], "rename": {"q": "search"}}}))
    answer = requests.get(f"{gw.url}/orders/echo?q=red%20shoes&debug=1&version=9&keep=a+b",
                          headers={"X-Debug": "1", "X-Old": "kept", "X-Source": "client"})
    assert answer.status_code == 200
    seen = answer.json()
    assert seen["args"] == {"search": ["red shoes"], "keep": ["a b"], "version": ["2"]}
    # untouched parameters keep their bytes
    assert "keep=a+b" in seen["path"] and "search=red%20shoes" in seen["path"]
    assert seen["headers"]["X-Source"] == "gateway"
    assert seen["headers"]["X-New"] == "kept"
    assert "X-Debug" not in seen["headers"] and "X-Old" not in seen["headers"]


def test_a_legacy_body_is_reshaped_before_the_upstream_sees_it(make_gateway, backend):
    gw = make_gateway(orders_config(backend, request={
        "body": "{order_id: id, customer: {name: customer_name, email: customer_email}, "
                "items: products}"}))
    answer = requests.post(f"{gw.url}/orders/echo", json=LEGACY)
    assert answer.status_code == 200
    seen = answer.json()
    assert seen["body"] == {"order_id": 42, "items": [1, 2],
                            "customer": {"name": "Ada", "email": "ada@example.com"}}
    raw = backend.app.config["SEEN"][-1]
    assert int(raw["headers"]["Content-Length"]) == len(raw["body"].encode())
    assert raw["headers"]["Content-Type"] == "application/json"


def test_a_chunked_body_is_reshaped_with_a_content_length(make_gateway, backend):
    gw = make_gateway(orders_config(backend, request={"body": "{order_id: id}"}))
    answer = requests.post(f"{gw.url}/orders/echo", data=iter([b'{"id":', b" 7}"]),
                           headers={"Content-Type": "application/json"})
    assert answer.json()["body"] == {"order_id": 7}
    raw = backend.app.config["SEEN"][-1]
    assert raw["headers"]["Content-Length"] == str(len(b'{"order_id":7}'))
    assert "Transfer-Encoding" not in raw["headers"]


@pytest.mark.parametrize("body, reason", [
    (b"{not json", "is not JSON"),
    (b"[1, 2, 3]", "has none of the fields"),
    (b"\xff\xfe", "is not JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "is not JSON"),
])
def test_a_body_the_transform_cannot_use_is_a_400_and_never_sent(make_gateway, backend, body, reason):
    gw = make_gateway(orders_config(backend, request={"body": "{order_id: id}"}))
    answer = requests.post(f"{gw.url}/orders/echo", data=body,
                           headers={"Content-Type": "application/json"})
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_body"
    assert reason in answer.json()["message"]
    assert backend.app.config["SEEN"] == []
    # the next request is served as usual
    assert requests.post(f"{gw.url}/orders/echo", json={"id": 1}).status_code == 200


def test_answers_are_reshaped_and_their_headers_edited(make_gateway, backend):
    gw = make_gateway(orders_config(backend, response={
        "headers": {"add": {"X-Shaped": "yes"}, "remove": ["Server"], "rename": {}},
        "body": "{user: name, team: team_id}"}))
    answer = requests.get(f"{gw.url}/orders/users/1")
    assert answer.status_code == 200
    assert answer.json() == {"user": "Ada", "team": 7}
    assert answer.headers["X-Shaped"] == "yes"
    assert answer.headers["Content-Length"] == str(len(answer.content))
    # the gateway asked for an answer it never has to decompress
    assert backend.app.config["SEEN"][-1]["headers"]["Accept-Encoding"] == "identity"


@pytest.mark.parametrize("path, status, body", [
    ("/orders/text", 200, b"plain words"),                         # not JSON
    ("/orders/status/404", 404, b'{"error":"status 404"}\n'),      # not 2xx
])
def test_other_answers_pass_through_untouched(make_gateway, backend, path, status, body, caplog):
    gw = make_gateway(orders_config(backend, response={"body": "{user: name}",
                                                       "headers": {"add": {"X-Shaped": "yes"}}}))
    caplog.set_level("INFO", logger="gateway.transform")
    answer = requests.get(gw.url + path)
    assert (answer.status_code, answer.content) == (status, body)
    if status == 200:
        assert "answer passed through untouched: text/plain" in caplog.text
    assert answer.headers["X-Shaped"] == "yes"  # header edits apply to every answer


def test_an_answer_over_the_cap_streams_through_untouched(make_gateway, backend, caplog):
    gw = make_gateway(orders_config(backend, response={"body": "{n: length(blob)}",
                                                       "max_body_bytes": 1000}))
    answer = requests.get(f"{gw.url}/orders/huge?bytes=300000")
    assert answer.status_code == 200
    assert len(answer.json()["blob"]) == 300000
    assert "larger than the transform's max_body_bytes" in caplog.text
    small = requests.get(f"{gw.url}/orders/huge?bytes=10")
    assert small.json() == {"n": 10}


def test_the_cache_keeps_what_the_client_got(make_gateway, backend):
    config = orders_config(backend, response={"body": "{user: name}"})
    config["services"]["orders"]["cache"] = {"ttl": 30}
    gw = make_gateway(config)
    first = requests.get(f"{gw.url}/orders/users/2")
    second = requests.get(f"{gw.url}/orders/users/2")
    assert first.headers["X-Cache-Status"] == "MISS" and second.headers["X-Cache-Status"] == "HIT"
    assert first.json() == second.json() == {"user": "Linus"}
    assert len(backend.app.config["SEEN"]) == 1


@pytest.mark.parametrize("transform, where", [
    ({"request": {"body": "{order_id: "}}, "services.orders.transform.request.body"),
    ({"response": {"body": "foo[?"}}, "services.orders.transform.response.body"),
    ({"request": {"headers": {"add": {"Bad Name": "x"}}}},
     "services.orders.transform.request.headers.add.Bad Name"),
    ({"request": {"headers": {"add": {"X-A": "a\r\nX-Injected: 1"}}}},
     "services.orders.transform.request.headers.add.X-A"),
    ({"request": {"query": {"remove": ["a&b"]}}}, "services.orders.transform.request.query.remove[0]"),
    ({"request": {"bodyy": "x"}}, "services.orders.transform.request.bodyy"),
])
def test_a_bad_transform_is_a_config_error_naming_its_key(transform, where):
    with pytest.raises(ConfigError) as caught:
        parse_config({"services": {"orders": {"upstream": "http://127.0.0.1:1",
                                              "transform": transform}}})
    assert any(p.startswith(where + ":") for p in caught.value.problems), caught.value.problems


def test_gateway_check_names_the_transform(tmp_path):
    config = parse_config({"services": {"orders": {"upstream": "http://127.0.0.1:1", "transform": {
        "request": {"body": "{a: b}"}}}}})
    assert "transform request" in config.services["orders"].describe()
    assert json.dumps(config.model_dump(mode="json"))  # the parsed config stays plain data
