"""``/healthz`` and ``/readyz``."""

from __future__ import annotations

from tests.conftest import dead_port


def test_healthz_is_always_ok(make_gateway):
    gw = make_gateway({"services": {"users": f"http://127.0.0.1:{dead_port()}"}})
    resp = gw.client.get("/healthz")
    assert resp.status_code == 200 and resp.json == {"status": "ok"}


def test_readyz_ok_when_every_upstream_answers(make_gateway, upstream, upstream2):
    gw = make_gateway({"services": {"users": upstream.url, "orders": upstream2.url}})
    resp = gw.client.get("/readyz")
    assert resp.status_code == 200
    assert resp.json["services"] == {"users": "up", "orders": "up"}
    assert resp.json["failing"] == []


def test_a_dead_service_leaves_the_gateway_ready_and_degraded(make_gateway, upstream):
    # one dead backend must not take every replica out of a Kubernetes Service
    dead = f"http://127.0.0.1:{dead_port()}"
    gw = make_gateway({"services": {"users": upstream.url, "orders": dead}})
    resp = gw.client.get("/readyz")
    assert resp.status_code == 200
    assert resp.json["status"] == "degraded"
    assert resp.json["services"] == {"users": "up", "orders": "down"}
    assert [f["upstream"] for f in resp.json["failing"]] == [dead]
    assert gw.client.get("/users/1").status_code == 200  # the live service still serves


def test_readyz_503_while_draining(make_gateway, upstream, monkeypatch):
    from gateway import lifecycle

    gw = make_gateway({"services": {"users": upstream.url}})
    assert gw.client.get("/readyz").status_code == 200
    monkeypatch.setattr(lifecycle, "_draining", True)
    resp = gw.client.get("/readyz")
    assert resp.status_code == 503 and resp.json["status"] == "unavailable"


def test_readyz_service_with_one_live_target_is_up(make_gateway, upstream):
    dead = f"http://127.0.0.1:{dead_port()}"
    gw = make_gateway({"services": {"users": {"upstream": [dead, upstream.url]}}})
    resp = gw.client.get("/readyz")
    assert resp.status_code == 200
    assert resp.json["failing"][0]["upstream"] == dead
