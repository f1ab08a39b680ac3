"""The example shop's composition (examples/gateway.yaml, blueprints/), and schemathesis over its document.

The example backends (examples/services.py) run on free ports; the gateway is
built from the example config exactly as `make run` builds it.
"""

from __future__ import annotations

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings

from examples.services import SERVICES
from gateway.app import create_app
from tests.conftest import ROOT
from tests.upstream import ServerThread

KEY = {"X-API-Key": "demo-key"}


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """The example backends and the gateway in front of them: ``(gateway url, app)``."""
    servers = {name: ServerThread(factory()) for name, (factory, _) in SERVICES.items()}
    with pytest.MonkeyPatch.context() as env:
        for name, server in servers.items():
            env.setenv(f"{name.upper()}_PORT", str(server.port))
        env.setenv("GATEWAY_OPENAPI_CACHE", str(tmp_path_factory.mktemp("openapi")))
        app = create_app(str(ROOT / "examples" / "gateway.yaml"))
    gateway = ServerThread(app)
    yield gateway.url, app
    gateway.stop()
    for server in servers.values():
        server.stop()


def test_the_dashboard_aggregate(example):
    url, _ = example
    assert requests.get(f"{url}/dashboard/1").status_code == 401
    answer = requests.get(f"{url}/dashboard/1", headers=KEY)
    assert answer.status_code == 200 and answer.headers["X-Gateway-Completed"] == "true"
    body = answer.json()
    assert body["user"]["name"] == "Ada"
    assert all(order["user_id"] == 1 for order in body["orders"]) and body["orders"]
    assert body["products"] == [{"id": 1, "name": "Keyboard"}, {"id": 2, "name": "Mouse"}]
    # the user is required: no such user, no dashboard
    missing = requests.get(f"{url}/dashboard/99", headers=KEY)
    assert missing.status_code == 502
    assert missing.json()["_errors"]["user"]["status"] == 404


def test_a_legacy_order_is_reshaped_both_ways(example):
    url, _ = example
    legacy = {"customer_id": 2, "sku": 1, "qty": 4}
    created = requests.post(f"{url}/legacy/orders", json=legacy, headers=KEY)
    assert created.status_code == 201
    body = created.json()
    assert {k: body[k] for k in ("customer_id", "sku", "qty")} == legacy
    # the orders service stored it in its own shape
    stored = requests.get(f"{url}/orders/{body['order_no']}", headers=KEY).json()
    assert stored == {"id": body["order_no"], "user_id": 2, "product_id": 1, "quantity": 4}
    refused = requests.post(f"{url}/legacy/orders", data="customer=2", headers={
        **KEY, "Content-Type": "application/json"})
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_body"


def test_the_python_dashboard_joins_and_totals(example):
    url, _ = example
    report = requests.get(f"{url}/reports/users/1", headers={**KEY, "X-Request-ID": "rep-1"})
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["user"] == "Ada"
    assert body["orders"][0] == {"order": 1, "product": "Mouse", "quantity": 1, "subtotal": 19.5}
    assert body["total"] == sum(line["subtotal"] for line in body["orders"])
    assert report.headers["X-Request-ID"] == "rep-1"
    assert requests.get(f"{url}/reports/users/99", headers=KEY).status_code == 404


def test_the_python_legacy_form_endpoint(example):
    url, _ = example
    created = requests.post(f"{url}/legacy-form/orders", data={"customer": "1", "sku": "2",
                                                               "qty": "2"}, headers=KEY)
    assert created.status_code == 201 and created.json()["status"] == "accepted"
    stored = requests.get(f"{url}/orders/{created.json()['order_no']}", headers=KEY).json()
    assert stored["quantity"] == 2 and stored["product_id"] == 2
    bad = requests.post(f"{url}/legacy-form/orders", data={"customer": "1", "sku": "x",
                                                           "qty": "2"}, headers=KEY)
    assert bad.status_code == 400
    assert bad.json()["message"] == "form field 'sku' must be a whole number of at least 1, got 'x'"


def test_the_document_covers_every_kind_of_route(example):
    url, _ = example
    paths = requests.get(f"{url}/openapi.json").json()["paths"]
    for path in ("/users/{item_id}", "/orders", "/products/{item_id}", "/legacy/{path}",
                 "/dashboard/{user_id}", "/reports/users/{user_id}", "/legacy-form/orders",
                 "/shop/users/{user_id}/orders"):
        assert path in paths, sorted(paths)


def test_schemathesis_finds_no_server_error(example):
    """Generated requests for every operation of the example's /openapi.json: never a 500.

    (Driven through hypothesis directly: schemathesis' pytest plugin does not
    run under pytest 9.)
    """
    schema = schemathesis.openapi.from_wsgi("/openapi.json", example[1])
    tried = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
        def no_server_error(case):
            response = case.call(headers=KEY)
            tried.append(response.status_code)
            assert response.status_code != 500, (case.method, case.formatted_path, response.text)

        no_server_error()
    # it got through the gateway's policies to the services, not only 4xx
    assert len(tried) > 100 and sum(200 <= status < 300 for status in tried) > 20
