"""The README's commands work as written, from a shell that has only the system Python."""

from __future__ import annotations

import os
import re
import subprocess

from tests.conftest import ROOT


def running_it_block() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Running it", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    return [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]


def test_running_it_activates_the_venv_first():
    lines = running_it_block()
    assert lines[0] == ". .venv/bin/activate"


def test_gateway_commands_work_after_the_readme_activation(tmp_path):
    """`gateway …` as the README writes it, in a shell whose PATH has no venv on it."""
    lines = running_it_block()
    commands = [lines[0]] + [
        line.replace("gateway.yaml", "examples/gateway.yaml") if line.startswith("gateway check")
        else line.replace("gateway.yaml > openapi.json",
                          f"examples/gateway.yaml > {tmp_path}/openapi.json")
        if line.startswith("gateway openapi")
        else line.replace("> gateway.schema.json", f"> {tmp_path}/schema.json")
        for line in lines if line.startswith(("gateway ", "echo -n"))
        and not line.startswith("gateway serve")]  # serves until stopped: tests/test_gunicorn.py
    assert len(commands) == 5, commands
    path = ":".join(p for p in os.environ["PATH"].split(":") if ".venv" not in p)
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    result = subprocess.run(["bash", "-ec", "\n".join(commands)], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, env={**env, "PATH": path})
    assert result.returncode == 0, result.stderr
    assert "examples/gateway.yaml: OK" in result.stdout
    assert re.search(r"^sha256:[0-9a-f]{64}$", result.stdout, re.M)
    assert (tmp_path / "schema.json").read_text().startswith("{")
    assert '"openapi": "3.1.0"' in (tmp_path / "openapi.json").read_text()
