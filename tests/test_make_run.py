"""``make run``'s demo (examples/run.py): every policy behaves as the README says."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT, free_ports, stop_group, wait_for_port


def signal_state(pid: int) -> str:
    """A process's blocked, ignored and caught signals, as /proc says."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return "(gone)"
    return ", ".join(line for line in lines if line.startswith(("SigBlk", "SigIgn", "SigCgt")))


@pytest.fixture
def demo(tmp_path):
    """examples/run.py as `make run` starts it, on free ports; its output in a file."""
    port, *backends = free_ports(6)
    ports = dict(zip(("USERS_PORT", "ORDERS_PORT", "PRODUCTS_PORT", "IDP_PORT", "UPDATES_PORT"),
                     backends, strict=True))
    out = tmp_path / "run.log"
    env = dict(os.environ, GATEWAY_BIND=f"127.0.0.1:{port}",
               **{k: str(v) for k, v in ports.items()})
    for name in ("GATEWAY_CONFIG", "GATEWAY_WORKERS", "GATEWAY_CONNECTIONS", "GATEWAY_THREADS"):
        env.pop(name, None)
    with open(out, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "examples.run"], cwd=ROOT, env=env,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        try:
            wait_for_port(port, process)
            for backend in ports.values():
                wait_for_port(backend, process)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n{out.read_text()}") from None
        yield f"http://127.0.0.1:{port}", out, ports
    finally:
        process.terminate()
        try:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                # Seen twice in full runs only, never alone: the TERM did not reach the
                # demo's gunicorn. Say what the demo's signal state was, then stop it as a
                # terminal's Ctrl-C does (to the whole group).
                state = signal_state(process.pid)
                print(f"the demo did not stop on TERM in 20 s; its signals: {state}; its "
                      f"output:\n{out.read_text()}")
                # and where the next session can read it (a passing test's output is not kept)
                (out.parent / "term-not-honoured.txt").write_text(
                    f"{state}\ntest process: {signal_state(os.getpid())}\n")
                os.killpg(process.pid, signal.SIGINT)
                try:
                    process.wait(timeout=40)
                except subprocess.TimeoutExpired:
                    raise AssertionError(f"the demo did not stop:\n{out.read_text()}") from None
            # stopping the demo stops its gunicorn too: nothing listens any more
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
        finally:
            stop_group(process)  # whatever happened, nothing it started outlives the test


def test_demo_policies_behave_as_documented(demo):
    url, out, ports = demo
    with requests.Session() as client:
        # cache: one MISS, then HITs
        cache = [client.get(url + "/products/1").headers["X-Cache-Status"] for _ in range(4)]
        assert cache == ["MISS", "HIT", "HIT", "HIT"]
        # quota: exactly 100 of 130 calls to /users pass "100/minute"
        statuses = [client.get(url + "/users/1").status_code for _ in range(130)]
        assert statuses.count(200) == 100 and statuses.count(429) == 30
        # the hand-written endpoint needs the key that /orders needs
        assert client.get(url + "/shop/users/1/orders").status_code == 401
        shop = client.get(url + "/shop/users/1/orders", headers={"X-API-Key": "demo-key"})
        assert shop.status_code == 200 and shop.json()["user"]["name"] == "Ada"
        # composition: the dashboard aggregate, a legacy order, the docs
        key = {"X-API-Key": "demo-key"}
        dashboard = client.get(url + "/dashboard/1", headers=key)
        assert dashboard.headers["X-Gateway-Completed"] == "true"
        assert dashboard.json()["user"]["name"] == "Ada"
        legacy = client.post(url + "/legacy/orders", headers=key,
                             json={"customer_id": 1, "sku": 2, "qty": 3})
        assert legacy.status_code == 201 and legacy.json()["qty"] == 3
        assert "/dashboard/{user_id}" in client.get(url + "/openapi.json").json()["paths"]
        assert "swagger-ui-bundle.js" in client.get(url + "/docs").text
        # a token from the development identity provider opens /orders too
        idp = f"http://127.0.0.1:{ports['IDP_PORT']}/realms/dev/token"
        token = client.post(idp, data={"client_id": "demo", "client_secret": "demo-secret",
                                       "scope": "orders:read"}).json()["access_token"]
        by_token = client.get(url + "/orders", headers={"Authorization": f"Bearer {token}"})
        assert by_token.status_code == 200
        assert client.post(url + "/orders", json={"user_id": 1}, headers={
            "Authorization": f"Bearer {token}"}).status_code == 403  # no orders:write
    # a line is written as its response finishes, just after the client has it
    deadline = time.monotonic() + 10
    while True:
        text = out.read_text()
        lines = text.splitlines()
        # make run logs text lines: `time METHOD path status duration key=value...`
        access = [line for line in lines if re.match(r"\d{4}-\d\d-\d\dT\S+ [A-Z]+ /", line)]
        if len(access) >= 142 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(access) == 142
    assert any(" GET /dashboard/1 200 " in line and "consumer=demo" in line for line in access)
    assert any(" GET /products/1 " in line and "cache=HIT" in line for line in access)
    assert "each worker counts" not in text  # no per-worker counting warning
    # only the gateway's JSON lines: no backend request lines mixed in
    assert not [line for line in lines if '"GET /' in line or "HTTP/1.1\"" in line]


def test_live_order_updates_over_a_websocket(demo):
    """The README's line: the key in the query, as a browser would send it."""
    import json

    from websockets.sync.client import connect
    url, _, _ = demo
    with connect(url.replace("http://", "ws://") + "/updates/?access_token=demo-key",
                 open_timeout=5) as ws:
        assert json.loads(ws.recv(timeout=5)) == {"order": 1, "status": "received"}
        ws.send("2")
        assert json.loads(ws.recv(timeout=5)) == {"order": 2, "status": "received"}


def test_backends_only_serves_the_shop_for_docker_compose():
    """docker-compose.yml's `backends` service: `python -m examples.run --backends-only`."""
    ports = free_ports(4)
    env = dict(os.environ, BACKENDS_HOST="127.0.0.1",
               **{f"{name}_PORT": str(port) for name, port in
                  zip(("USERS", "ORDERS", "PRODUCTS", "UPDATES"), ports, strict=True)})
    process = subprocess.Popen([sys.executable, "-m", "examples.run", "--backends-only"],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    try:
        for port in ports:
            wait_for_port(port, process)
        assert requests.get(f"http://127.0.0.1:{ports[0]}/users/1").json()["name"] == "Ada"
        assert "/products" in requests.get(f"http://127.0.0.1:{ports[2]}/openapi.json").json()["paths"]
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


def test_the_demo_prints_every_line_the_readme_shows(demo):
    """Each curl and WebSocket line of the README's first block, as the demo prints it
    (its port aside), and the WebSocket client from the venv that has it."""
    url, out, _ = demo
    readme = (ROOT / "README.md").read_text()
    block = readme.split("Both need only `python3`", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    shown = [re.sub(r"\s+#.*$", "", line).strip()
             for line in block.replace("\\\n", " ").splitlines() if line.strip()]
    printed = re.sub(r"\s+", " ", out.read_text().replace(url.removeprefix("http://"),
                                                          "127.0.0.1:8080"))
    for line in shown:
        command = re.sub(r"\s+", " ", line)
        assert command in printed, command
    assert ".venv/bin/python -m websockets" in printed


def test_make_run_installs_what_running_needs_and_no_more(tmp_path):
    """`make run` on a fresh checkout: the package and the demo's extra, not the test and
    docs tools (pytest, mypy, MkDocs) that `make test` adds."""
    plan = subprocess.run(["make", "-n", "run", f"VENV={tmp_path / 'venv'}"], cwd=ROOT,
                          capture_output=True, text=True, check=True).stdout
    installs = [line for line in plan.splitlines() if "pip install" in line and " -e " in line]
    assert installs == [f"{tmp_path / 'venv'}/bin/python -m pip install --quiet -c "
                        "constraints.txt -e '.[examples]'"]
    test_plan = subprocess.run(["make", "-n", "test", f"VENV={tmp_path / 'venv'}"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout
    assert "'.[examples,test,docs,testing]'" in test_plan


def test_a_consumer_added_while_the_demo_runs_is_served_at_once(demo):
    """The README's three lines: a consumer and a key made with the CLI while `make run`
    goes on, the key accepted on a keyed route with no reload."""
    import time
    import uuid

    url, _, _ = demo
    gateway = Path(sys.executable).parent / "gateway"
    name = f"partner-{uuid.uuid4().hex[:8]}"  # examples/gateway.db outlives the run
    config = ROOT / "examples" / "demo.yaml"
    subprocess.run([gateway, "consumers", "add", name, "--config", config], check=True,
                   capture_output=True)
    key = subprocess.run([gateway, "keys", "issue", name, "--config", config], check=True,
                         capture_output=True, text=True).stdout.strip()
    issued = time.monotonic()
    time.sleep(max(0.0, issued + 1.0 - time.monotonic()))
    answer = requests.get(f"{url}/orders", headers={"X-API-Key": key}, timeout=10)
    assert answer.status_code == 200, answer.text
    usage = requests.get(f"{url}/_gateway/usage", headers={"X-API-Key": key}, timeout=10)
    assert usage.status_code == 200 and usage.json()["consumer"] == name, usage.text
    subprocess.run([gateway, "consumers", "remove", name, "--config", config], check=True,
                   capture_output=True)


def test_a_term_that_lands_on_any_thread_of_the_demo_stops_it(demo):
    """The kernel hands a process-wide signal to any thread that does not block it: here
    one of the backends' server threads, as tgkill makes certain. The demo (and its
    gateway) must stop all the same."""
    import ctypes

    url, out, _ = demo
    port = url.rpartition(":")[2]
    (pid,) = [int(entry) for entry in os.listdir("/proc") if entry.isdigit()
              and b"examples.run" in _read(f"/proc/{entry}/cmdline")
              and f"GATEWAY_BIND=127.0.0.1:{port}".encode() in _read(f"/proc/{entry}/environ")]
    threads = [int(tid) for tid in os.listdir(f"/proc/{pid}/task") if int(tid) != pid]
    assert threads, "the demo runs its backends in threads"
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.tgkill(pid, threads[0], signal.SIGTERM) == 0, ctypes.get_errno()
    deadline = time.monotonic() + 15
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _running(pid), f"the demo did not stop on a TERM to one of its threads:\n" \
        f"{out.read_text()}"


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError:
        return b""


def _running(pid: int) -> bool:
    """Alive and not a zombie (the fixture reaps it)."""
    stat = _read(f"/proc/{pid}/stat")
    return bool(stat) and stat.rpartition(b")")[2].split()[0] != b"Z"
