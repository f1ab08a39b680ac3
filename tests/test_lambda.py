"""lambda_handler.handler, called with recorded API Gateway v1, v2 and ALB events.

The events (tests/lambda_events/) are the shapes AWS documents; the gateway
behind the handler proxies to a real upstream on loopback.
"""

from __future__ import annotations

import base64
import importlib
import json
import sys

import pytest
import yaml

from tests.conftest import ROOT, dead_port

EVENTS = ROOT / "tests" / "lambda_events"


def event(name: str) -> dict:
    return json.loads((EVENTS / f"{name}.json").read_text())


@pytest.fixture
def lambda_app(tmp_path, monkeypatch):
    """``load(config)``: import lambda_handler as a Lambda container would, on ``config``."""
    def load(config: dict):
        path = tmp_path / "gateway.yaml"
        path.write_text(yaml.safe_dump(config))
        monkeypatch.setenv("GATEWAY_CONFIG", str(path))
        sys.modules.pop("lambda_handler", None)
        return importlib.import_module("lambda_handler").handler
    yield load
    sys.modules.pop("lambda_handler", None)


def test_http_api_v2(lambda_app, upstream):
    handler = lambda_app({"services": {"users": upstream.url}})
    answer = handler(event("http_api_v2"), None)
    assert answer["statusCode"] == 200
    body = json.loads(answer["body"])
    # the stage prefix is not part of the route; the raw path and query keep their bytes
    assert body["raw_uri"] == "/users/echo/caf%C3%A9?tag=a&tag=b&q=red%20shoes"
    headers = body["headers"]
    assert headers["x-forwarded-for"] == "205.255.255.176"  # the context's, not the client's
    assert headers["x-forwarded-prefix"] == "/prod"
    assert headers["x-forwarded-proto"] == "https"
    assert headers["cookie"] == "session=abc;theme=dark"
    assert headers["x-request-id"] == "lambda-v2-1"
    assert answer["headers"]["x-request-id"] == "lambda-v2-1"


def test_rest_api_v1_with_repeated_keys_and_a_binary_body(lambda_app, upstream):
    handler = lambda_app({"services": {"users": upstream.url}})
    answer = handler(event("rest_api_v1"), None)
    assert answer["statusCode"] == 200
    body = json.loads(answer["body"])
    assert body["method"] == "POST"
    assert body["raw_uri"] == "/users/echo?tag=a&tag=b"
    sent = base64.b64decode("AAEC/wBoZWxsbw==")
    assert body["body_length"] == len(sent)
    import hashlib
    assert body["body_sha256"] == hashlib.sha256(sent).hexdigest()
    assert body["headers"]["x-tag"] == "a,b"
    assert body["headers"]["x-forwarded-for"] == "52.255.255.12"
    assert body["headers"]["x-forwarded-prefix"] == "/Prod"


def test_a_binary_answer_goes_back_base64(lambda_app, upstream):
    handler = lambda_app({"services": {"users": upstream.url}})
    request = event("rest_api_v1") | {"httpMethod": "GET", "path": "/users/bytes", "body": None,
                                      "isBase64Encoded": False,
                                      "multiValueQueryStringParameters": {"size": ["300"]}}
    answer = handler(request, None)
    assert answer["statusCode"] == 200 and answer["isBase64Encoded"] is True
    assert len(base64.b64decode(answer["body"])) == 300


def test_alb_with_repeated_answer_headers(lambda_app, upstream):
    handler = lambda_app({"services": {"users": {"upstream": upstream.url,
                                                 "rate_limit": "1/minute"}}})
    answer = handler(event("alb"), None)
    assert answer["statusCode"] == 200
    assert answer["multiValueHeaders"]["Set-Cookie"] == ["a=1; Path=/", "b=2; HttpOnly"]
    assert answer["multiValueHeaders"]["X-Multi"] == ["one", "two"]
    # the quota counts the address the balancer saw (the last X-Forwarded-For entry)
    again = handler(event("alb"), None)
    assert again["statusCode"] == 429
    other = event("alb")
    other["multiValueHeaders"]["x-forwarded-for"] = ["1.2.3.4, 72.12.164.126"]
    assert handler(other, None)["statusCode"] == 200


def test_errors_are_the_gateway_json_errors(lambda_app):
    handler = lambda_app({"services": {"users": f"http://127.0.0.1:{dead_port()}"}})
    down = handler(event("http_api_v2"), None)
    assert down["statusCode"] == 502
    assert json.loads(down["body"])["error"] == "bad_gateway"
    missing = handler(event("http_api_v2") | {"rawPath": "/prod/nothing"}, None)
    assert missing["statusCode"] == 404
    assert json.loads(missing["body"])["error"] == "not_found"
    # the next request after an error is served as usual
    assert handler(event("alb"), None)["statusCode"] == 502


def test_a_config_error_fails_the_cold_start_with_the_key_path(lambda_app):
    with pytest.raises(SystemExit) as stopped:
        lambda_app({"services": {"users": {"upstream": "htp://x"}}})
    assert "services.users.upstream: 'htp://x' is not an http(s) URL" in str(stopped.value)
