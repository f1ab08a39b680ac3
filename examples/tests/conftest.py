"""The demo shop's own tests: what a team writes with the gateway's pytest plugin alone.

The plugin (``gateway.testing``, installed with ``flask-api-gateway[testing]``) gives
every fixture these tests use; this file only says which config they test, since
the shop's gateway.yaml is not in the rootdir (``--gateway-config`` or the
``gateway_config`` setting would do the same).
"""

from pathlib import Path

import pytest


@pytest.fixture
def gateway_config():
    return Path(__file__).resolve().parent.parent / "gateway.yaml"
