"""``kill -HUP``: a valid config replaces the workers gracefully; an invalid one changes nothing."""

from __future__ import annotations

import signal
import threading

import pytest
import requests
import yaml

from tests.conftest import wait_for


@pytest.mark.fault
def test_an_invalid_config_is_refused_and_the_gateway_keeps_serving(gunicorn_gateway, upstream,
                                                                    tmp_path):
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump({"services": {"users": {"upstream": upstream.url}}}))
    gw = gunicorn_gateway(str(path), workers=2)
    assert requests.get(f"{gw.url}/users/1", timeout=10).status_code == 200

    # the typo that used to take the whole gateway down
    path.write_text("services:\n  users:\n    upstream: htp://127.0.0.1:1\n    strip_prefx: true\n")
    gw.process.send_signal(signal.SIGHUP)
    assert wait_for(lambda: "reload refused" in gw.log()), gw.log()
    log = gw.log()
    assert "services.users.upstream: 'htp://127.0.0.1:1' is not an http(s) URL" in log
    assert "services.users.strip_prefx: unknown key; did you mean 'strip_prefix'?" in log
    assert "Booting worker" not in log.split("Hang up")[1]  # no worker replaced
    for _ in range(20):
        assert requests.get(f"{gw.url}/users/1", timeout=10).status_code == 200
    assert gw.process.poll() is None


@pytest.mark.fault
def test_a_valid_config_takes_effect_and_requests_in_flight_finish(gunicorn_gateway, upstream,
                                                                   upstream2, tmp_path):
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump({"services": {"users": {"upstream": upstream.url}}}))
    gw = gunicorn_gateway(str(path), workers=2)
    assert requests.get(f"{gw.url}/orders/1", timeout=10).status_code == 404

    upstream.app.gate.clear()
    held: list[int] = []
    slow = threading.Thread(target=lambda: held.append(
        requests.get(f"{gw.url}/users/hold", timeout=30).status_code))
    slow.start()
    assert wait_for(lambda: upstream.app.in_flight == 1)

    path.write_text(yaml.safe_dump({"services": {"users": {"upstream": upstream.url},
                                                 "orders": {"upstream": upstream2.url}}}))
    gw.process.send_signal(signal.SIGHUP)
    # new requests see the new config (the old workers serve until the new are ready) ...
    assert wait_for(lambda: requests.get(f"{gw.url}/orders/1", timeout=10).status_code == 200)
    assert wait_for(lambda: "Worker exiting" in gw.log())
    # (the old worker still holding a request stops accepting as it is told to stop: both
    # old workers say so; from a fresh clone one once answered a request after the other
    # had exited)
    assert wait_for(lambda: gw.log().count("Worker stopping") >= 2), gw.log()
    for _ in range(10):
        answer = requests.get(f"{gw.url}/orders/1", timeout=10)
        assert (answer.status_code, answer.json().get("upstream")) == (200, "two"), \
            (answer.status_code, answer.text,
             [line for line in gw.log().splitlines() if not line.startswith("{")])
    assert f"reload accepted: {path}, 2 services" in gw.log()
    # ... while the one in flight on an old worker is let finish
    upstream.app.gate.set()
    slow.join(timeout=30)
    assert held == [200]
    assert gw.process.poll() is None


def test_an_edit_reaches_no_worker_before_hup(gunicorn_gateway, upstream, upstream2, tmp_path):
    """Workers load the copy the master validated: a worker restarted after a crash
    serves the config of the last (re)load, not a file edited since."""
    import os
    import re

    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump({"services": {"users": {"upstream": upstream.url}}}))
    gw = gunicorn_gateway(str(path), workers=1)
    path.write_text(yaml.safe_dump({"services": {"users": {"upstream": upstream.url},
                                                 "orders": {"upstream": upstream2.url}}}))
    # the master listens before its worker has booted (and said so in the log)
    assert wait_for(lambda: re.findall(r"Booting worker with pid: (\d+)", gw.log()))
    worker = int(re.findall(r"Booting worker with pid: (\d+)", gw.log())[-1])
    os.kill(worker, signal.SIGKILL)
    assert wait_for(lambda: len(re.findall(r"Booting worker with pid", gw.log())) == 2)
    assert wait_for(lambda: requests.get(f"{gw.url}/users/1", timeout=10).status_code == 200)
    assert requests.get(f"{gw.url}/orders/1", timeout=10).status_code == 404
    gw.process.send_signal(signal.SIGHUP)
    assert wait_for(lambda: requests.get(f"{gw.url}/orders/1", timeout=10).status_code == 200)


def test_old_workers_serve_until_the_new_ones_are_ready(tmp_path, upstream):
    """A reload whose new workers boot slowly (3 s more, right after the fork): the old
    workers are stopped only once every new one has loaded the app, and requests sent
    all through the reload are answered."""
    import os
    import re
    import subprocess
    import sys

    from tests.conftest import ROOT, free_port, slow_boot_settings, wait_for_port

    settings = slow_boot_settings(tmp_path)
    config = tmp_path / "gateway.yaml"
    config.write_text(yaml.safe_dump({"services": {"users": upstream.url}}))
    port = free_port()
    log_path = tmp_path / "gunicorn.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(settings), "-b", f"127.0.0.1:{port}",
             "wsgi:app"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            env=dict(os.environ, GATEWAY_CONFIG=str(config), GATEWAY_WORKERS="2"),
            start_new_session=True)
    try:
        wait_for_port(port, process, timeout=60)
        assert wait_for(lambda: log_path.read_text().count("Worker ready") == 2, timeout=60)
        process.send_signal(signal.SIGHUP)
        statuses = []
        with requests.Session() as client:
            while log_path.read_text().count("Worker ready") < 4 \
                    or "Worker exiting" not in log_path.read_text():
                statuses.append(client.get(f"http://127.0.0.1:{port}/users/1",
                                           timeout=60).status_code)
                assert len(statuses) < 100_000
        assert set(statuses) == {200}
        log = log_path.read_text()
        booted = [int(pid) for pid in re.findall(r"Booting worker with pid: (\d+)", log)]
        old, new = booted[:2], booted[2:]
        last_ready = max(log.index(f"Worker ready (pid: {pid})") for pid in new)
        for pid in old:  # each old worker stops after the last new one is ready
            assert wait_for(lambda pid=pid: f"Worker exiting (pid: {pid})" in log_path.read_text())
            assert log_path.read_text().index(f"Worker exiting (pid: {pid})") > last_ready
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def checker_pids(master: int) -> list[int]:
    """The master's checker processes (gateway/serve/checker.py)."""
    from pathlib import Path
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and int((proc / "stat").read_text().split(") ")[1].split()[1]) \
                    == master and b"gateway.serve.checker" in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


@pytest.mark.fault
def test_reloads_are_checked_by_the_masters_checker_and_without_it_all_the_same(
        gunicorn_gateway, upstream, upstream2, tmp_path):
    """The master asks one long-lived checker (the gateway imported once, a fork per
    check) instead of starting `gateway check` each time; a dead checker is replaced
    by a plain child, and a reload is checked as strictly either way."""
    import os
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump({"services": {"users": {"upstream": upstream.url}}}))
    gw = gunicorn_gateway(str(path), workers=1)
    (checker,) = checker_pids(gw.process.pid)
    path.write_text("services:\n  users:\n    upstream: htp://127.0.0.1:1\n")
    gw.process.send_signal(signal.SIGHUP)
    assert wait_for(lambda: "reload refused" in gw.log()), gw.log()
    assert "is not an http(s) URL" in gw.log() and checker_pids(gw.process.pid) == [checker]
    os.kill(checker, signal.SIGKILL)
    path.write_text(yaml.safe_dump({"services": {"users": {"upstream": upstream.url},
                                                 "orders": {"upstream": upstream2.url}}}))
    gw.process.send_signal(signal.SIGHUP)
    assert wait_for(lambda: "reload accepted" in gw.log()), gw.log()
    assert wait_for(lambda: requests.get(f"{gw.url}/orders/1", timeout=10).status_code == 200)
