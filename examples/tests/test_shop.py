"""The shop's gateway.yaml, as its team tests it: keys, quotas, the cache, the breaker,
the aggregate, the legacy transform and token scopes, against fake upstreams."""

from __future__ import annotations


def test_orders_need_a_key_and_the_upstream_never_sees_it(gateway_client, upstreams, api_key):
    assert gateway_client.get("/orders").status_code == 401
    key = api_key("demo")
    assert gateway_client.get("/orders", headers={"X-API-Key": key}).status_code == 200
    upstreams["orders"].assert_called("GET", "/orders", headers={"X-Consumer": "demo"})
    assert "X-API-Key" not in upstreams["orders"].requests[-1].headers


def test_the_users_quota_refuses_at_its_limit_and_recovers_a_minute_later(gateway_client,
                                                                          gateway_clock):
    statuses = [gateway_client.get("/users/1").status_code for _ in range(101)]
    assert statuses[:100] == [200] * 100 and statuses[100] == 429
    gateway_clock.advance(60)
    assert gateway_client.get("/users/1").status_code == 200


def test_products_are_cached_for_ten_seconds(gateway_client, upstreams, gateway_clock):
    upstreams["products"].respond("GET", "/products/1", json={"id": 1, "name": "lamp"})
    first, second = (gateway_client.get("/products/1") for _ in range(2))
    assert (first.headers["X-Cache-Status"], second.headers["X-Cache-Status"]) == ("MISS", "HIT")
    upstreams["products"].assert_called("GET", "/products/1", times=1)
    gateway_clock.advance(11)
    assert gateway_client.get("/products/1").headers["X-Cache-Status"] == "MISS"


def test_the_products_breaker_opens_after_five_failures_and_closes_after_its_cool_down(
        gateway_client, upstreams, gateway_clock):
    products = upstreams["products"]
    products.fail(5, status=500)
    assert [gateway_client.get("/products/x").status_code for _ in range(5)] == [500] * 5
    refused = gateway_client.get("/products/x")
    assert (refused.status_code, refused.json["error"]) == (503, "upstream_unavailable")
    products.assert_called("GET", "/products/x", times=5)  # the sixth never left
    gateway_clock.advance(30)
    assert gateway_client.get("/products/x").status_code == 200  # the probe, then closed
    assert gateway_client.get("/products/x").status_code == 200


def test_the_dashboard_goes_on_without_the_products(gateway_client, upstreams, api_key):
    upstreams["users"].respond("GET", "/users/7", json={"id": 7, "name": "Ada"})
    upstreams["orders"].respond("GET", "/orders", json=[{"id": 1}])
    upstreams["products"].down()
    answer = gateway_client.get("/dashboard/7", headers={"X-API-Key": api_key("demo")})
    assert answer.status_code == 200
    assert answer.json["user"] == {"id": 7, "name": "Ada"} and answer.json["orders"] == [{"id": 1}]
    assert "products" in answer.json["_errors"]


def test_the_legacy_route_reshapes_both_ways(gateway_client, upstreams, api_key):
    upstreams["legacy"].respond("POST", "/orders", status=201, json={
        "id": 42, "user_id": 1, "product_id": 2, "quantity": 3})
    answer = gateway_client.post("/legacy/orders", headers={"X-API-Key": api_key("demo")},
                                 json={"customer_id": 1, "sku": 2, "qty": 3})
    assert answer.status_code == 201
    assert answer.json == {"order_no": 42, "customer_id": 1, "sku": 2, "qty": 3}
    sent = upstreams["legacy"].requests[-1]
    assert sent.json == {"user_id": 1, "product_id": 2, "quantity": 3}
    assert sent.headers["X-Source"] == "legacy-client"


def test_a_token_without_the_write_scope_may_read_but_not_write(gateway_client, issue_token,
                                                                upstreams):
    reader = {"Authorization": f"Bearer {issue_token(sub='ada', scopes=['orders:read'])}"}
    assert gateway_client.get("/orders", headers=reader).status_code == 200
    assert upstreams["orders"].requests[-1].headers["X-User-Id"] == "ada"
    refused = gateway_client.post("/orders", headers=reader, json={"sku": 1})
    assert (refused.status_code, refused.json["error"]) == (403, "insufficient_scope")


def test_the_reports_blueprint_joins_three_services_through_gateway_api(gateway_client,
                                                                        upstreams, api_key):
    upstreams["users"].respond("GET", "/users/1", json={"id": 1, "name": "Ada"})
    upstreams["orders"].respond("GET", "/orders", json=[
        {"id": 9, "user_id": 1, "product_id": 2, "quantity": 3}])
    upstreams["products"].respond("GET", "/products", json=[
        {"id": 2, "name": "lamp", "price": 1.5}])
    answer = gateway_client.get("/reports/users/1", headers={"X-API-Key": api_key("demo")})
    assert answer.json == {"user": "Ada", "total": 4.5, "orders": [
        {"order": 9, "product": "lamp", "quantity": 3, "subtotal": 4.5}]}
    upstreams["orders"].assert_called("GET", "/orders", headers={"X-Consumer": "demo"})
    assert upstreams["orders"].requests[-1].query == {"user_id": ["1"]}
