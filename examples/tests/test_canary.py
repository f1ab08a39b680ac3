"""A canary tried before it is written into the shop's gateway.yaml: a config of the
test's own (the gateway_config fixture, overridden for this module)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml


@pytest.fixture
def gateway_config():
    shop = yaml.safe_load((Path(__file__).resolve().parent.parent / "gateway.yaml").read_text())
    shop["services"]["products"]["canary"] = {"upstream": "http://products-next.internal",
                                              "weight": 30}  # percent
    shop["services"]["products"].pop("cache")  # every request reaches a branch
    return shop


def test_a_canary_of_weight_30_takes_about_30_percent(gateway_client, upstreams):
    for i in range(1000):
        # a client address of its own each time: the canary is sticky per caller
        gateway_client.get(f"/products/{i}",
                           environ_base={"REMOTE_ADDR": f"10.{i // 65536}.{i // 256 % 256}"
                                                        f".{i % 256}"})
    canary = len(upstreams["products"].canary.requests)
    primary = len(upstreams["products"].requests)
    assert canary + primary == 1000
    assert 250 <= canary <= 350, canary
