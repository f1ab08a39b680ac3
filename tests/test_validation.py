"""``services.<name>.validate``: requests checked against the service's OpenAPI document.

Two real upstreams: the echo upstream (tests/upstream.py) with the hand-written
OpenAPI 3.0 document tests/specs/orders.yaml (``openapi_file``), and a FastAPI
app under uvicorn whose own 3.1 document comes from its models
(tests/fastapi_backend.py ``shop``). Every refusal is checked to have reached
no upstream.
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import yaml
from hypothesis import HealthCheck, given, settings
from prometheus_client import REGISTRY

from gateway.config import ConfigError, load_config, parse_config
from gateway.routing import CONFIG_CHECKS
from tests.conftest import ROOT, free_port, wait_for, wait_for_port

SPEC = str(ROOT / "tests" / "specs" / "orders.yaml")


def orders(upstream_url: str, **validate) -> dict:
    return {"services": {"orders": {"upstream": upstream_url, "strip_prefix": True,
                                    "openapi_file": SPEC, "validate": validate or True}}}


def failures(operation: str, location: str, mode: str) -> float:
    return REGISTRY.get_sample_value("gateway_validation_failures_total", {
        "service": "orders", "operation": operation, "location": location, "mode": mode}) or 0.0


TENANT = {"X-Tenant": "acme"}


@pytest.mark.parametrize("method, target, kwargs, expected", [
    ("POST", "/orders/orders", {"json": {"sku": 5, "items": [{"qty": 1}]}},
     [{"location": "body", "pointer": "/sku", "keyword": "type"}]),
    ("POST", "/orders/orders", {"json": {"items": [{"qty": 1}]}},
     [{"location": "body", "pointer": "/sku", "keyword": "required"}]),
    ("POST", "/orders/orders", {"json": {"sku": "a", "items": [{"qty": 2}, {"qty": -1}]}},
     [{"location": "body", "pointer": "/items/1/qty", "keyword": "minimum",
       "message": "-1 is less than the minimum of 1"}]),
    ("POST", "/orders/orders", {"json": {"sku": "a", "items": [{"qty": 1}], "extra": 1}},
     [{"location": "body", "pointer": "/extra", "keyword": "additionalProperties"}]),
    ("POST", "/orders/orders", {"data": "sku=a&qty=0",
                                "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
     [{"location": "body", "pointer": "/qty", "keyword": "minimum"}]),
    ("POST", "/orders/orders", {}, [{"location": "body", "keyword": "required"}]),
    ("GET", "/orders/orders?ids=1,x,3", {"headers": TENANT},
     [{"location": "query", "name": "ids", "pointer": "/1", "keyword": "type"}]),
    ("GET", "/orders/orders?tags=short&tags=muchtoolong", {"headers": TENANT},
     [{"location": "query", "name": "tags", "pointer": "/1", "keyword": "maxLength"}]),
    ("GET", "/orders/orders?limit=101", {"headers": TENANT},
     [{"location": "query", "name": "limit", "keyword": "maximum"}]),
    ("GET", "/orders/orders", {}, [{"location": "header", "name": "X-Tenant",
                                    "keyword": "required"}]),
    ("GET", "/orders/orders/0", {}, [{"location": "path", "name": "id", "keyword": "minimum"}]),
    ("GET", "/orders/orders/abc", {}, [{"location": "path", "name": "id", "keyword": "type"}]),
])
def test_a_broken_request_is_refused_with_where_and_why(make_gateway, upstream, method, target,
                                                         kwargs, expected):
    gw = make_gateway(orders(upstream.url))
    hits = upstream.app.hits
    answer = requests.request(method, gw.url + target, timeout=10, **kwargs)
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert body["error"] == "invalid_request" and body["request_id"]
    assert body["message"].startswith("the request does not match ")
    assert [{k: e[k] for k in want} for e, want in zip(body["errors"], expected, strict=True)] \
        == expected
    assert upstream.app.hits == hits  # nothing reached the service


def test_every_problem_is_listed_up_to_max_errors_with_the_status_asked_for(make_gateway,
                                                                           upstream):
    gw = make_gateway(orders(upstream.url, status=422, max_errors=2))
    answer = requests.post(gw.url + "/orders/orders", json={"sku": "", "items": [], "x": 1},
                           timeout=10)
    assert answer.status_code == 422
    assert len(answer.json()["errors"]) == 2
    gw = make_gateway(orders(upstream.url))
    answer = requests.post(gw.url + "/orders/orders", json={"sku": "", "items": [], "x": 1},
                           timeout=10)
    assert {e["pointer"] for e in answer.json()["errors"]} == {"/sku", "/items", "/x"}


def test_a_body_of_a_type_the_operation_does_not_take_is_415(make_gateway, upstream):
    gw = make_gateway(orders(upstream.url))
    hits = upstream.app.hits
    answer = requests.post(gw.url + "/orders/orders", data=b"sku=a",
                           headers={"Content-Type": "text/plain"}, timeout=10)
    assert answer.status_code == 415
    assert answer.json()["error"] == "unsupported_media_type"
    assert "application/json" in answer.json()["message"]
    assert upstream.app.hits == hits


def test_valid_requests_pass_untouched(make_gateway, upstream):
    gw = make_gateway(orders(upstream.url))
    body = json.dumps({"sku": "a", "note": None, "items": [{"qty": 2}]}, indent=1).encode()
    answer = requests.post(gw.url + "/orders/orders", data=body,
                           headers={"Content-Type": "application/json; charset=utf-8"}, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.json()["body_sha256"] == hashlib.sha256(body).hexdigest()
    form = b"sku=a&qty=3"
    answer = requests.post(gw.url + "/orders/orders", data=form, timeout=10,
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.json()["body_sha256"] == hashlib.sha256(form).hexdigest()
    # array parameters in the style each declares: ids (form, explode false), tags (exploded)
    target = "/orders/orders?ids=1,2,3&tags=a&tags=b&limit=5"
    answer = requests.get(gw.url + target, headers=TENANT, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.json()["raw_uri"] == "/orders?ids=1,2,3&tags=a&tags=b&limit=5"
    assert requests.get(gw.url + "/orders/orders/7", timeout=10).json()["path"] == "/orders/7"


def test_report_mode_passes_and_counts_each_problem(make_gateway, upstream):
    gw = make_gateway(orders(upstream.url, requests="report"))
    before = failures("create_order", "body", "report")
    answer = requests.post(gw.url + "/orders/orders", json={"items": [{"qty": 0}]}, timeout=10)
    assert answer.status_code == 200 and answer.json()["upstream"] == "one"
    assert failures("create_order", "body", "report") == before + 2  # sku missing, qty 0
    before = failures("list_orders", "query", "report")
    assert requests.get(gw.url + "/orders/orders?limit=0", headers=TENANT,
                        timeout=10).status_code == 200
    assert failures("list_orders", "query", "report") == before + 1


def test_refusals_are_counted_too(make_gateway, upstream):
    gw = make_gateway(orders(upstream.url))
    before = failures("create_order", "body", "enforce")
    requests.post(gw.url + "/orders/orders", json={"sku": 1, "items": []}, timeout=10)
    assert failures("create_order", "body", "enforce") == before + 2


def test_unknown_operations_pass_or_are_refused(make_gateway, upstream):
    gw = make_gateway(orders(upstream.url))
    assert requests.get(gw.url + "/orders/elsewhere", timeout=10).status_code == 200
    gw = make_gateway(orders(upstream.url, unknown_operations="refuse"))
    hits = upstream.app.hits
    answer = requests.get(gw.url + "/orders/elsewhere", timeout=10)
    assert answer.status_code == 404 and answer.json()["error"] == "unknown_operation"
    answer = requests.delete(gw.url + "/orders/orders/7", timeout=10)
    assert answer.status_code == 405 and answer.headers["Allow"] == "GET"
    assert upstream.app.hits == hits


def test_secret_values_are_never_echoed(make_gateway, upstream, caplog):
    gw = make_gateway(orders(upstream.url))
    with caplog.at_level(logging.INFO):
        answer = requests.get(gw.url + "/orders/orders?pin=s3cr", headers=TENANT, timeout=10)
    assert answer.status_code == 400
    (problem,) = answer.json()["errors"]
    assert problem["name"] == "pin" and problem["keyword"] == "minLength"
    assert "s3cr" not in answer.text
    # (the gateway's own lines: the test server's request line is werkzeug's)
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("gateway")]
    assert logged and not any("s3cr" in line for line in logged)


def test_an_answer_that_breaks_its_schema_reaches_the_client_and_is_counted(make_gateway,
                                                                           upstream):
    gw = make_gateway(orders(upstream.url, responses="report"))
    before = failures("broken_answer", "body", "response")
    answer = requests.get(gw.url + "/orders/orders/broken", timeout=10)
    assert answer.status_code == 200 and answer.json()["upstream"] == "one"  # as it came
    # counted once the client has it all (just after the last byte)
    from tests.conftest import wait_for
    assert wait_for(lambda: failures("broken_answer", "body", "response") == before + 1)
    before = failures("get_order", "body", "response")
    assert requests.get(gw.url + "/orders/orders/7", timeout=10).status_code == 200
    assert failures("get_order", "body", "response") == before  # it keeps its promise
    before = failures("status", "status", "response")
    assert requests.get(gw.url + "/orders/status/418", timeout=10).status_code == 418
    assert wait_for(lambda: failures("status", "status", "response") == before + 1)


@pytest.mark.parametrize("service, words", [
    ({"validate": True}, "validation needs the service's OpenAPI document"),
    ({"validate": True, "openapi": "/openapi.json", "openapi_file": SPEC}, "not both"),
    ({"validate": {"requests": "strict"}}, "services.orders.validate.requests"),
    ({"validate": {"status": 404}, "openapi_file": SPEC}, "services.orders.validate.status"),
])
def test_validate_mistakes_name_their_key(service, words):
    with pytest.raises(ConfigError) as refused:
        parse_config({"services": {"orders": {"upstream": "http://127.0.0.1:9001", **service}}},
                     checks=CONFIG_CHECKS)
    assert words in str(refused.value), str(refused.value)


def test_a_local_document_with_an_invalid_schema_is_refused_with_its_pointer(tmp_path):
    document = yaml.safe_load(Path(SPEC).read_text())
    document["components"]["schemas"]["Order"]["properties"]["items"]["items"]["properties"][
        "qty"]["type"] = "integr"
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "orders.yaml").write_text(yaml.safe_dump(document))
    config = tmp_path / "gateway.yaml"  # the file is named relative to the config file
    config.write_text(yaml.safe_dump({"services": {"orders": {
        "upstream": "http://127.0.0.1:9001", "openapi_file": "specs/orders.yaml",
        "validate": True}}}))
    with pytest.raises(ConfigError) as refused:
        load_config(str(config), checks=CONFIG_CHECKS)
    assert ("services.orders.openapi_file: invalid schema at "
            "/components/schemas/Order/properties/items/items/properties/qty/type") \
        in str(refused.value), str(refused.value)
    check = subprocess.run([str(ROOT / ".venv" / "bin" / "gateway"), "check", "--config",
                            str(config)], capture_output=True, text=True, cwd=ROOT)
    assert check.returncode != 0
    assert "/components/schemas/Order/properties/items/items/properties/qty/type" in \
        check.stdout + check.stderr


def test_a_fetched_document_that_is_invalid_leaves_the_service_unvalidated(make_gateway, serve,
                                                                           caplog, tmp_path,
                                                                           monkeypatch):
    monkeypatch.setenv("GATEWAY_OPENAPI_CACHE", str(tmp_path))
    document = yaml.safe_load(Path(SPEC).read_text())
    document["paths"]["/orders"]["get"]["parameters"][0]["schema"]["minimum"] = "one"

    def service(environ, start_response):
        body = json.dumps(document if environ["PATH_INFO"] == "/openapi.json" else {}).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    upstream = serve(service)
    with caplog.at_level(logging.WARNING):
        gw = make_gateway({"services": {"orders": {"upstream": upstream.url, "strip_prefix": True,
                                                   "openapi": "/openapi.json", "validate": True}}})
    assert "/paths/~1orders/get/parameters/0/schema/minimum" in caplog.text
    assert requests.get(gw.url + "/orders/orders?limit=0", timeout=10).status_code == 200
    assert REGISTRY.get_sample_value("gateway_validation_active", {"service": "orders"}) == 0


# -- a FastAPI service and its own document --------------------------------------------

@pytest.fixture(scope="module")
def shop():
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "uvicorn", "tests.fastapi_backend:shop",
                                "--port", str(port), "--log-level", "warning"], cwd=ROOT)
    wait_for_port(port, process)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=10)


def shop_gateway(make_gateway, shop, tmp_path, monkeypatch, **validate):
    monkeypatch.setenv("GATEWAY_OPENAPI_CACHE", str(tmp_path))
    return make_gateway({"services": {"shop": {
        "upstream": shop, "strip_prefix": True, "openapi": "/openapi.json",
        "validate": validate or True}}})


def test_a_fastapi_services_own_document_is_enforced(make_gateway, shop, tmp_path, monkeypatch):
    gw = shop_gateway(make_gateway, shop, tmp_path, monkeypatch, responses="report")
    requests.delete(shop + "/received", timeout=10)
    refused = [
        requests.post(gw.url + "/shop/orders", json={"sku": "a", "items": [{"qty": 0}]},
                      timeout=10),
        requests.post(gw.url + "/shop/orders", json={"sku": "a", "items": [], "x": 1},
                      timeout=10),
        requests.get(gw.url + "/shop/orders?ids=1&ids=two", timeout=10),
        requests.get(gw.url + "/shop/orders/x", timeout=10),
    ]
    assert [r.status_code for r in refused] == [400] * 4
    assert refused[0].json()["errors"][0]["pointer"] == "/items/0/qty"
    assert {e["pointer"] for e in refused[1].json()["errors"]} == {"/items", "/x"}
    assert refused[2].json()["errors"][0] | {"message": ""} == {
        "location": "query", "name": "ids", "pointer": "/1", "keyword": "type", "message": ""}
    assert requests.get(shop + "/received", timeout=10).json() == []  # none reached it
    body = b'{"sku": "a", "items": [{"qty": 2}]}'
    passed = requests.post(gw.url + "/shop/orders", data=body, timeout=10,
                           headers={"Content-Type": "application/json"})
    assert passed.status_code == 200, passed.text
    assert requests.get(shop + "/received", timeout=10).json() == [
        {"path": "/orders", "body": body.decode()}]  # byte for byte
    assert requests.get(gw.url + "/shop/orders?ids=1&ids=2", timeout=10).json()["ids"] == [1, 2]
    # an answer that drifted from the document reaches the client as it is, and is counted
    before = REGISTRY.get_sample_value("gateway_validation_failures_total", {
        "service": "shop", "operation": "get_order", "location": "body",
        "mode": "response"}) or 0
    drifted = requests.get(gw.url + "/shop/orders/13", timeout=10)
    assert drifted.json() == {"items": [{"qty": 1}]}
    from tests.conftest import wait_for
    assert wait_for(lambda: REGISTRY.get_sample_value("gateway_validation_failures_total", {
        "service": "shop", "operation": "get_order", "location": "body",
        "mode": "response"}) == before + 1)


def test_schemathesis_finds_no_500_and_nothing_the_service_refuses(make_gateway, shop, tmp_path,
                                                                   monkeypatch):
    """Generated requests through the validating gateway: never a 500, and never one the
    gateway passed that FastAPI's own validation refused (its 422; the gateway says 400)."""
    import schemathesis
    gw = shop_gateway(make_gateway, shop, tmp_path, monkeypatch)
    schema = schemathesis.openapi.from_url(gw.url + "/openapi.json")
    statuses: list[int] = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        def agrees(case):
            response = case.call()
            statuses.append(response.status_code)
            assert response.status_code not in (500, 422), (
                case.method, case.formatted_path, case.query, case.body, response.text)

        agrees()
    assert sum(200 <= s < 300 for s in statuses) > 20, statuses


def test_a_body_a_transform_reshapes_is_not_checked_its_parameters_are(make_gateway, upstream):
    """The document describes what the service gets, which is the reshaped body."""
    config = orders(upstream.url)
    config["services"]["orders"]["transform"] = {
        "request": {"body": "{sku: product, items: [{qty: `1`}]}"}}
    gw = make_gateway(config)
    answer = requests.post(gw.url + "/orders/orders", json={"product": "a"}, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.json()["upstream"] == "one" and answer.json()["body_length"] > 0
    assert requests.get(gw.url + "/orders/orders/0", timeout=10).status_code == 400


def test_an_upgrade_header_that_is_no_handshake_is_validated_and_refused(make_gateway, upstream):
    # only a GET with Upgrade: websocket and Connection: upgrade is a handshake
    gw = make_gateway(orders(upstream.url, unknown_operations="refuse"))
    hits = upstream.app.hits
    answer = requests.post(gw.url + "/orders/orders", json={"sku": 5, "items": [{"qty": 1}]},
                           headers={"Upgrade": "foo", "Connection": "upgrade"}, timeout=10)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"
    answer = requests.get(gw.url + "/orders/elsewhere", headers={"Upgrade": "websocket"},
                          timeout=10)
    assert answer.status_code == 404 and answer.json()["error"] == "unknown_operation"
    answer = requests.delete(gw.url + "/orders/orders/7", headers={"Upgrade": "h2c"}, timeout=10)
    assert answer.status_code == 405
    assert upstream.app.hits == hits


# -- a document missing at start ---------------------------------------------------------

class Publisher:
    """A service whose /openapi.json answers what the test says; every other request is
    recorded and answered ``{}``."""

    def __init__(self, status: int, body: bytes):
        self.answer = (status, body)
        self.requests: list[str] = []

    def publish(self, document: dict) -> None:
        self.answer = (200, json.dumps(document).encode())

    def __call__(self, environ, start_response):
        if environ["PATH_INFO"] == "/openapi.json":
            status, body = self.answer
        else:
            self.requests.append(environ["PATH_INFO"])
            status, body = 200, b"{}"
        start_response(f"{status} X", [("Content-Type", "application/json")])
        return [body]


def fetched_orders(url: str, **validate) -> dict:
    return {"services": {"orders": {"upstream": url, "strip_prefix": True,
                                    "openapi": "/openapi.json", "validate": validate or True}}}


def missing_gauge() -> float | None:
    return REGISTRY.get_sample_value("gateway_validation_document_missing", {"service": "orders"})


@pytest.mark.parametrize("status, body", [
    (503, b""), (200, b"<html>not json</html>"), (200, b'{"openapi": "3.0.3"}')],
    ids=["not-200", "not-json", "not-openapi"])
def test_a_missing_document_refuses_every_request_until_it_arrives(make_gateway, serve, caplog,
                                                                   tmp_path, monkeypatch,
                                                                   status, body):
    monkeypatch.setenv("GATEWAY_OPENAPI_CACHE", str(tmp_path))
    publisher = Publisher(status, body)
    upstream = serve(publisher)
    with caplog.at_level(logging.WARNING):
        gw = make_gateway(fetched_orders(upstream.url))
    assert f"services.orders.validate: the OpenAPI document at {upstream.url}/openapi.json" \
        in caplog.text
    answer = requests.get(gw.url + "/orders/orders?limit=5", headers=TENANT, timeout=10)
    assert answer.status_code == 503 and answer.json()["error"] == "validation_unavailable"
    assert 1 <= int(answer.headers["Retry-After"]) <= 30
    assert publisher.requests == []
    ready = gw.client.get("/readyz")
    assert ready.status_code == 200 and ready.json["validation"] == {
        "orders": "waiting_for_document"}
    assert missing_gauge() == 1
    status_page = gw.client.get("/_gateway/status.json").json
    assert status_page["services"][0]["validation"] == "waiting_for_document"

    publisher.publish(yaml.safe_load(Path(SPEC).read_text()))
    assert wait_for(lambda: requests.get(gw.url + "/orders/orders?limit=0", headers=TENANT,
                                         timeout=10).status_code == 400, timeout=10)
    assert requests.get(gw.url + "/orders/orders?limit=5", headers=TENANT,
                        timeout=10).status_code == 200
    assert publisher.requests == ["/orders"]
    assert gw.client.get("/readyz").json["validation"] == {"orders": "ok"}
    assert missing_gauge() == 0
    assert REGISTRY.get_sample_value("gateway_validation_active", {"service": "orders"}) == 1


def test_on_missing_document_pass_lets_requests_through_unvalidated(make_gateway, serve,
                                                                    tmp_path, monkeypatch):
    monkeypatch.setenv("GATEWAY_OPENAPI_CACHE", str(tmp_path))
    publisher = Publisher(404, b"")
    upstream = serve(publisher)
    gw = make_gateway(fetched_orders(upstream.url, on_missing_document="pass"))
    assert requests.get(gw.url + "/orders/orders?limit=0", timeout=10).status_code == 200
    assert gw.client.get("/readyz").json["validation"] == {"orders": "waiting_for_document"}
    assert missing_gauge() == 1
    publisher.publish(yaml.safe_load(Path(SPEC).read_text()))  # fetched again all the same
    assert wait_for(lambda: requests.get(gw.url + "/orders/orders?limit=0",
                                         timeout=10).status_code == 400, timeout=10)


def test_a_copy_kept_from_an_earlier_fetch_counts_as_the_document(make_gateway, serve, caplog,
                                                                  tmp_path, monkeypatch):
    monkeypatch.setenv("GATEWAY_OPENAPI_CACHE", str(tmp_path))
    publisher = Publisher(200, b"")
    publisher.publish(yaml.safe_load(Path(SPEC).read_text()))
    upstream = serve(publisher)
    make_gateway(fetched_orders(upstream.url))  # fetched, and a copy kept
    publisher.answer = (503, b"")
    with caplog.at_level(logging.WARNING):
        gw = make_gateway(fetched_orders(upstream.url))
    assert "validated against the copy fetched earlier" in caplog.text
    assert requests.get(gw.url + "/orders/orders?limit=0", headers=TENANT,
                        timeout=10).status_code == 400
    assert gw.client.get("/readyz").json["validation"] == {"orders": "ok"}
    assert missing_gauge() == 0


@pytest.mark.parametrize("where, kwargs, value", [
    ("cookie", {"cookies": {"session": "sekret-cookie"}}, "sekret-cookie"),
    ("query", {"params": {"tags": ["ok", "sekret-tag"]}}, "sekret-tag"),
    ("header", {"headers": {"X-Tenant": "Sekret-Tenant"}}, "Sekret-Tenant"),
    ("query", {"params": {"limit": "987654"}}, "987654"),
])
def test_no_error_body_or_log_line_carries_a_parameters_value(make_gateway, upstream, caplog,
                                                               where, kwargs, value):
    gw = make_gateway(orders(upstream.url))
    headers = {**TENANT, **kwargs.pop("headers", {})}
    with caplog.at_level(logging.INFO):
        answer = requests.get(gw.url + "/orders/orders", headers=headers, timeout=10, **kwargs)
    assert answer.status_code == 400
    (problem,) = answer.json()["errors"]
    assert problem["location"] == where and problem["message"].startswith("the value")
    assert value not in answer.text
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("gateway")]
    assert logged and not any(value in line for line in logged)
