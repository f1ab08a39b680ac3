"""``/openapi.json``, ``gateway openapi`` and ``/docs``: one document for the whole surface.

The services publishing documents are real FastAPI apps under uvicorn
(tests/fastapi_backend.py); ``/docs`` is loaded in a real headless chromium.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import requests
import yaml

from gateway.config import hash_key
from tests.backends import shop_backend
from tests.browser import Browser
from tests.conftest import ROOT, free_port, wait_for_port
from tests.test_aggregate import DASHBOARD

ERRORS = {"400", "401", "403", "413", "429", "502", "503", "504"}


@pytest.fixture(scope="module")
def fastapi_services():
    """The users and orders FastAPI apps, each under its own uvicorn process."""
    started = {}
    for name in ("users", "orders"):
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", f"tests.fastapi_backend:{name}", "--port", str(port),
             "--log-level", "warning"], cwd=ROOT)
        started[name] = (f"http://127.0.0.1:{port}", process)
        wait_for_port(port, process)
    yield {name: url for name, (url, _) in started.items()}
    for _, process in started.values():
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GATEWAY_OPENAPI_CACHE", str(tmp_path / "openapi-cache"))


def merged_config(fastapi_services, shop_url: str) -> dict:
    return {
        "consumers": {"web": {"keys": [hash_key("web-key")]}},
        "services": {
            "users": {"upstream": fastapi_services["users"], "openapi": "/openapi.json",
                      "auth": "api_key", "methods": ["GET"]},
            "orders": {"upstream": fastapi_services["orders"], "openapi": "/openapi.json",
                       "prefix": "/api/orders", "strip_prefix": True, "rate_limit": "10/second"},
            "products": {"upstream": shop_url},
        },
        "aggregates": [{"path": "/profile/<int:user_id>", "auth": "api_key", "calls": {
            "user": {"service": "users", "path": "/users/{user_id}"},
            "order": {"service": "orders", "path": "/orders/{user_id}", "select": "sku"}}}],
    }


def operations(document: dict):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method != "parameters":
                yield path, method, operation


def test_the_services_documents_are_merged_under_their_prefixes(make_gateway, fastapi_services,
                                                                serve):
    gw = make_gateway(merged_config(fastapi_services, serve(shop_backend()).url))
    document = requests.get(f"{gw.url}/openapi.json").json()
    assert document["openapi"] == "3.1.0"
    paths = document["paths"]
    # users: no strip_prefix, the upstream's own paths; POST left out (methods: [GET])
    assert set(paths["/users/{user_id}"]) == {"get"}
    assert "/users" not in paths
    # orders: strip_prefix, so moved under /api/orders
    assert "/api/orders/orders/{order_id}" in paths
    # the two different Items are kept apart, and each $ref follows its own
    schemas = document["components"]["schemas"]
    assert schemas["users.Item"]["required"] == ["id", "name"]
    assert schemas["orders.Item"]["required"] == ["sku", "quantity"]
    get_user = paths["/users/{user_id}"]["get"]
    assert get_user["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/users.Item"}
    get_order = paths["/api/orders/orders/{order_id}"]["get"]
    assert get_order["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/orders.Item"}
    assert get_user["operationId"] == "users.get_user"
    # a service without a document is one catch-all path item
    assert set(paths["/products/{path}"]) >= {"parameters", "get", "post", "delete"}
    # API keys where the route needs them; the gateway's own errors where the route can give them:
    # 401/403 only with authentication, 429 only with a quota
    assert get_user["security"] == [{"ApiKey": []}]
    assert "security" not in get_order
    assert document["components"]["securitySchemes"]["ApiKey"] == {
        "type": "apiKey", "in": "header", "name": "X-API-Key"}
    for path, method, operation in operations(document):
        if path in ("/healthz", "/readyz"):
            continue
        expected = set(ERRORS)
        if not path.startswith(("/users", "/profile")):
            expected -= {"401", "403"}
        if not path.startswith("/api/orders"):
            expected -= {"429"}
        assert set(operation["responses"]) & ERRORS == expected, (path, method)
        assert operation["responses"]["400"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/GatewayError"}
    # the aggregate: its parameter, and an answer built from its calls
    profile = paths["/profile/{user_id}"]
    assert profile["parameters"] == [{"name": "user_id", "in": "path", "required": True,
                                      "schema": {"type": "integer"}}]
    answer = profile["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer["properties"]["user"]["$ref"] == "#/components/schemas/users.Item"
    assert set(answer["properties"]) == {"user", "order", "_errors"}
    assert profile["get"]["security"] == [{"ApiKey": []}]
    # every $ref points at a component that exists
    text = json.dumps(document)
    for ref in {part.split('"')[0] for part in text.split('"$ref": "')[1:]}:
        kind, name = ref.split("/")[2:4]
        assert name in document["components"][kind], ref


def test_a_service_whose_document_cannot_be_had_gets_a_catch_all(make_gateway, caplog):
    port = free_port()  # nothing listens
    gw = make_gateway({"services": {"users": {"upstream": f"http://127.0.0.1:{port}",
                                              "openapi": "/openapi.json",
                                              "timeout": {"connect": 0.5, "read": 1}}}})
    document = requests.get(f"{gw.url}/openapi.json").json()
    assert "/users/{path}" in document["paths"]
    assert "services.users.openapi: the upstream service refused the connection" in caplog.text
    assert requests.get(f"{gw.url}/healthz").status_code == 200


def test_gateway_openapi_prints_the_document_and_refreshes_on_request(fastapi_services, tmp_path):
    config = tmp_path / "gateway.yaml"
    config.write_text(yaml.safe_dump({"services": {"users": {
        "upstream": fastapi_services["users"], "openapi": "/openapi.json"}}}))
    env = dict(os.environ, GATEWAY_OPENAPI_CACHE=str(tmp_path / "cache"))
    command = [sys.executable, "-m", "gateway.cli", "openapi", "--config", str(config)]
    first = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    assert first.returncode == 0, first.stderr
    assert "/users/{user_id}" in json.loads(first.stdout)["paths"]
    # the service goes away: the kept copy still documents it ...
    config.write_text(yaml.safe_dump({"services": {"users": {
        "upstream": fastapi_services["users"], "openapi": "/openapi.json",
        "prefix": "/people", "strip_prefix": True}}}))
    cached = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    assert "/people/users/{user_id}" in json.loads(cached.stdout)["paths"]
    # ... and --refresh asks the upstream again (a wrong path now: a warning and a catch-all)
    config.write_text(config.read_text().replace("/openapi.json", "/nothing.json"))
    refreshed = subprocess.run(command + ["--refresh"], capture_output=True, text=True, env=env,
                               cwd=ROOT)
    assert refreshed.returncode == 0
    assert "/people/{path}" in json.loads(refreshed.stdout)["paths"]
    assert "services.users.openapi: /nothing.json answered 404" in refreshed.stderr


@pytest.mark.browser
def test_docs_render_the_operations_in_a_real_browser(make_gateway, fastapi_services, serve,
                                                      tmp_path):
    gw = make_gateway(merged_config(fastapi_services, serve(shop_backend()).url))
    page = requests.get(f"{gw.url}/docs")
    assert page.status_code == 200 and "cdn" not in page.text.lower()
    assert requests.get(f"{gw.url}/docs/static/swagger-ui-bundle.js").status_code == 200
    browser = Browser(tmp_path / "profile", budget_ms=15000)
    dom = browser.dom(f"{gw.url}/docs")
    # Swagger UI fetched /openapi.json and drew one block per operation
    assert 'class="opblock opblock-get' in dom, dom[:2000]
    assert "/users/{user_id}" in dom and "/profile/{user_id}" in dom
    assert "/api/orders/orders/{order_id}" in dom
    assert browser.screenshot(f"{gw.url}/docs", "docs", "1280,2000").stat().st_size > 10_000


def test_the_dashboard_aggregate_is_documented(make_gateway, serve):
    shop = {name: serve(shop_backend(name)) for name in ("users", "orders", "products")}
    gw = make_gateway({"services": {n: s.url for n, s in shop.items()}, "aggregates": [DASHBOARD]})
    item = requests.get(f"{gw.url}/openapi.json").json()["paths"]["/dashboard/{user_id}"]
    assert item["parameters"][0]["name"] == "user_id"
    answer = item["get"]["responses"]["200"]
    assert set(answer["content"]["application/json"]["schema"]["properties"]) == {
        "user", "orders", "team", "products", "_errors"}
    assert answer["headers"]["X-Gateway-Completed"]["schema"]["enum"] == ["true", "false"]
