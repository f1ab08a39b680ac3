"""``make run``: the example backends, and the gateway in front of them under gunicorn.

``--backends-only`` serves the backends alone (docker-compose.yml does).

Backends listen on $USERS_PORT, $ORDERS_PORT and $PRODUCTS_PORT (default
9001-9003), the gateway on $GATEWAY_BIND (default 127.0.0.1:8080). The
example keeps its state in memory (``storage: memory://``), which is exact in
one process, so the demo runs one gunicorn worker: every quota and cache then
behaves as documented. (Several workers share state through Redis.) Only the
gateway's access lines reach the terminal, as text (GATEWAY_LOG_FORMAT). Ctrl-C stops everything.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from werkzeug.serving import make_server

from examples.services import SERVICES
from examples.updates import serve_updates

#: the live order updates (a WebSocket backend, examples/updates.py)
UPDATES_PORT = 9005

ROOT = Path(__file__).resolve().parent.parent


def serve_backends(host: str = "127.0.0.1") -> list:
    # the backends' own request lines would be mixed into the gateway's JSON lines
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    servers = []
    for name, (factory, default_port) in SERVICES.items():
        port = int(os.environ.get(f"{name.upper()}_PORT") or default_port)
        server = make_server(host, port, factory(), threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True, name=name).start()
        servers.append(server)
        print(f"backend {name:9} http://127.0.0.1:{port}")
    port = int(os.environ.get("UPDATES_PORT") or UPDATES_PORT)
    servers.append(serve_updates(host, port))
    print(f"backend {'updates':9} ws://127.0.0.1:{port}")
    return servers


def backends_only() -> int:
    """``python -m examples.run --backends-only``: the shop alone, on $BACKENDS_HOST
    (the docker-compose.yml service runs it on 0.0.0.0). Ctrl-C or SIGTERM stops it."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    servers = serve_backends(os.environ.get("BACKENDS_HOST", "127.0.0.1"))
    try:
        while True:  # (not signal.pause(): see wait_waking)
            time.sleep(0.5)
    except (KeyboardInterrupt, SystemExit):
        pass
    for server in servers:
        server.shutdown()
    return 0


def demo_config() -> str:
    """examples/demo.yaml: examples/gateway.yaml with a database beside it
    (examples/gateway.db), so consumers and keys can be added while the demo runs.
    Written at each start (and ignored by git): gateway.yaml itself stays the example that
    starts anywhere with nothing to create first (the Docker image runs it)."""
    example = ROOT / "examples" / "gateway.yaml"
    demo = ROOT / "examples" / "demo.yaml"
    demo.write_text("# written by `make run` (examples/run.py) from gateway.yaml: edit that one\n"
                    "database: sqlite:///gateway.db\n" + example.read_text())
    return str(demo)


def wait_waking(process: subprocess.Popen) -> int:
    """``process.wait()``, waking twice a second. The kernel may hand a signal to any
    thread that does not block it, here a backend's server thread; Python then runs the
    handler in the main thread only once that thread wakes, and a plain ``wait()``
    sleeps in ``waitpid`` until gunicorn ends. That was the demo's TERM ignored for 20 s,
    once in a full test run now and then."""
    while True:
        try:
            return process.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            continue


def main() -> int:
    # A stop signal the parent left blocked would be inherited by this process and its
    # gunicorn, and a TERM would wait in the mask for ever (the first suspect when the
    # demo ignored its TERM for 20 s in full test runs; the cause was another:
    # wait_waking).
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    if "--backends-only" in sys.argv[1:]:
        return backends_only()
    bind = os.environ.get("GATEWAY_BIND", "127.0.0.1:8080")
    # a terminal reads text lines better than JSON (production logs JSON)
    env = dict(os.environ, GATEWAY_WORKERS=os.environ.get("GATEWAY_WORKERS", "1"),
               GATEWAY_LOG_FORMAT=os.environ.get("GATEWAY_LOG_FORMAT", "text"),
               GATEWAY_CONFIG=os.environ.get("GATEWAY_CONFIG") or demo_config())
    # the database of consumers and keys managed at runtime: created, or brought to
    # this code's schema (twice is harmless)
    upgraded = subprocess.run([sys.executable, "-m", "gateway.cli", "db", "upgrade", "--config",
                               env["GATEWAY_CONFIG"]], cwd=ROOT, capture_output=True, text=True)
    if upgraded.returncode != 0 and "no database configured" not in upgraded.stderr:
        print(upgraded.stderr, file=sys.stderr, end="")
        return 1
    servers = serve_backends()
    gateway = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "-b", bind,
         "wsgi:app"], cwd=ROOT, env=env)
    # the interpreter that has websockets: .venv/bin/python from the checkout
    python = os.path.relpath(sys.executable, ROOT) \
        if sys.executable.startswith(str(ROOT) + os.sep) else sys.executable
    command = os.path.join(os.path.dirname(python), "gateway")
    config = os.path.relpath(env["GATEWAY_CONFIG"], ROOT) \
        if env["GATEWAY_CONFIG"].startswith(str(ROOT) + os.sep) else env["GATEWAY_CONFIG"]
    print(f"\ngateway at http://{bind}  (config: {env['GATEWAY_CONFIG']})\n"
          f"  curl http://{bind}/users/1\n"
          f"  curl -H 'X-API-Key: demo-key' http://{bind}/orders\n"
          f"  curl http://{bind}/products/1   (cached: MISS, then HIT)\n"
          f"  curl -H 'X-API-Key: demo-key' http://{bind}/shop/users/1/orders\n"
          f"  curl -H 'X-API-Key: demo-key' http://{bind}/dashboard/1\n"
          f"  curl -H 'X-API-Key: demo-key' -H 'Content-Type: application/json' "
          f"-d '{{\"customer_id\": 1, \"sku\": 2, \"qty\": 3}}' http://{bind}/legacy/orders\n"
          f"  curl -H 'X-API-Key: demo-key' http://{bind}/reports/users/1\n"
          f"  TOKEN=$(curl -s -d client_id=demo -d client_secret=demo-secret "
          f"-d scope=orders:read http://127.0.0.1:{os.environ.get('IDP_PORT') or 9004}"
          f"/realms/dev/token | "
          f"python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')\n"
          f"  curl -H \"Authorization: Bearer $TOKEN\" http://{bind}/orders\n"
          f"  {python} -m websockets 'ws://{bind}/updates/?access_token=demo-key'"
          f"   (live order updates; type an order number to follow it)\n"
          f"  {command} consumers add partner --config {config}\n"
          f"  KEY=$({command} keys issue partner --config {config})\n"
          f"  curl -H \"X-API-Key: $KEY\" http://{bind}/orders   (no reload: within a second)\n"
          f"  curl -H \"X-API-Key: $KEY\" http://{bind}/_gateway/usage   (its own usage this "
          "month)\n"
          f"  curl http://{bind}/readyz\n"
          f"  open http://{bind}/docs\n"
          "Ctrl-C stops it all.\n", flush=True)
    # SIGTERM (from a supervisor or a test) stops the gateway too, as Ctrl-C does
    signal.signal(signal.SIGTERM, lambda *_: gateway.send_signal(signal.SIGTERM))
    try:
        return wait_waking(gateway)
    except KeyboardInterrupt:
        gateway.send_signal(signal.SIGTERM)
        return wait_waking(gateway)
    finally:
        for server in servers:
            server.shutdown()


if __name__ == "__main__":
    sys.exit(main())
