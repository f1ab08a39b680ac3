"""deploy/grafana/gateway-dashboard.json names only metrics the gateway really exports."""

from __future__ import annotations

import json
import re

import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ROOT

DASHBOARD = ROOT / "deploy" / "grafana" / "gateway-dashboard.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def expressions() -> list[str]:
    """The dashboard's queries and the alerting rules' expressions."""
    dashboard = json.loads(DASHBOARD.read_text())
    rules = yaml.safe_load(ALERTS.read_text())
    return ([target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
            + [rule["expr"] for group in rules["groups"] for rule in group["rules"]])


def test_every_expression_names_an_exported_metric(make_gateway, upstream):
    gw = make_gateway({"services": {"users": upstream.url}})
    requests.get(f"{gw.url}/users/1")
    exported = set()
    for family in text_string_to_metric_families(requests.get(f"{gw.url}/metrics").text):
        if family.name.startswith("gateway_"):
            exported |= {family.name + suffix for suffix in SUFFIXES[family.type]}
    used = {name for expr in expressions() for name in re.findall(r"\bgateway_\w+", expr)}
    assert used and used <= exported, used - exported


def test_the_dashboard_covers_what_an_operator_asks_first():
    text = " ".join(expressions())
    for metric in ("gateway_requests_total", "gateway_request_duration_seconds_bucket",
                   "gateway_upstream_duration_seconds_bucket", "gateway_rate_limited_total",
                   "gateway_cache_total", "gateway_circuit_open", "gateway_storage_up"):
        assert metric in text, metric
    assert 'status=~"5.."' in text and "histogram_quantile(0.99" in text
