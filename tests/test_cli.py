"""``gateway check``: validates, prints the route table, exits non-zero on errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GATEWAY = Path(sys.executable).parent / "gateway"


def run(*args, **kwargs):
    return subprocess.run([str(GATEWAY), *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=60, **kwargs)


def test_check_prints_route_table_for_the_example():
    result = run("check", "--config", "examples/gateway.yaml")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["PREFIX", "SERVICE", "METHODS", "UPSTREAM"]
    assert any(line.split()[:2] == ["/orders", "orders"] for line in lines)
    assert "OK, 3 service(s)" in lines[-1]


def test_check_fails_with_key_paths(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("services:\n  users:\n    upstream: htp://x\n    retries: lots\n")
    result = run("check", "--config", str(bad))
    assert result.returncode == 1
    assert "services.users.upstream: 'htp://x' is not an http(s) URL" in result.stderr
    assert "services.users.retries: expected a whole number" in result.stderr


def test_check_reads_gateway_config_env(tmp_path):
    import os
    env = dict(os.environ, GATEWAY_CONFIG=str(ROOT / "examples" / "gateway.yaml"))
    assert run("check", env=env).returncode == 0
