"""The offload rows of ``make bench`` (issue 34): nginx carrying what the gateway decided.

Each contender is nginx running ``gateway nginx``'s output in front of a gunicorn
gateway, both started by ``python -m bench.offload serve``, one process whose tree
holds them all, so that the row's CPU per request is nginx's and the gateway's
together (its log reader included). The same service is measured offloaded
(``offload: true``: nginx proxies, the gateway decides) and not (``offload: false``:
the same nginx file sends it to the gateway, as deploy/nginx.conf does):

- the full chain (API key, quota in lease mode, access log, metrics, request id):
  offloaded ≥ 2.0 × through the gateway;
- 1 MiB downloads (the same chain): offloaded ≥ 5 ×;
- WebSocket echo through an offloaded service ≥ 0.9 × direct (bench/websocket.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FULL_THROUGH = "full chain, nginx -> gateway (not offloaded)"
FULL_OFFLOADED = "full chain, offloaded (nginx carries, gateway decides)"
DOWNLOAD_THROUGH = "1 MiB downloads, nginx -> gateway"
DOWNLOAD_OFFLOADED = "1 MiB downloads, offloaded"
#: the ceiling of both download rows: nginx alone, no gateway, no decision
DOWNLOAD_NGINX = "1 MiB downloads, nginx proxy_pass alone"
#: (offloaded, not, target)
RATIOS = [(FULL_OFFLOADED, FULL_THROUGH, 2.0), (DOWNLOAD_OFFLOADED, DOWNLOAD_THROUGH, 5.0)]


def config(path: Path, upstream: str, key: str, storage: str, offload: bool) -> Path:
    """The bench's full chain with the quota in lease mode, offloaded or not."""
    path.write_text(
        f"storage: {storage}\nquota: {{mode: lease}}\ntrusted_proxies: 1\n"
        f"consumers:\n  bench:\n    keys: [{key}]\n"
        f"services:\n  users:\n    upstream: {upstream}\n    offload: {str(offload).lower()}\n"
        "    auth: api_key\n    rate_limit: 100000000/minute\n")
    return path


def websocket_config(path: Path, upstream_port: int) -> Path:
    path.write_text(f"services:\n  chat:\n    upstream: http://127.0.0.1:{upstream_port}\n"
                    "    websocket: true\n    offload: true\n")
    return path


def start(port: int, config_path: Path, workers: int) -> subprocess.Popen:
    """nginx on ``port`` in front of a gateway on ``config_path``: one process tree."""
    return subprocess.Popen([sys.executable, "-m", "bench.offload", "serve", str(port),
                             str(config_path), str(workers)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def serve(port: int, config_path: str, workers: int) -> None:
    """(``python -m bench.offload serve PORT CONFIG WORKERS``) until TERM."""
    from bench.nginx import nginx_binary
    from tests.conftest import free_port, wait_for_port

    prefix = Path(tempfile.mkdtemp(prefix="bench-offload-"))
    os.chmod(prefix, 0o755)  # nginx's workers (nobody) reach the log socket here
    socket_path = prefix / "nginx.sock"
    gateway_port = free_port()
    env = dict(os.environ, GATEWAY_CONFIG=config_path, GATEWAY_WORKERS=str(workers),
               GATEWAY_LOG_SOCKET=str(socket_path))
    gateway = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py",
                                "-b", f"127.0.0.1:{gateway_port}", "wsgi:app"], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(gateway_port, gateway, timeout=60)  # nginx answers once the gateway can
    block = subprocess.run([sys.executable, "-m", "gateway.cli", "nginx", "--config", config_path,
                            "--listen", f"127.0.0.1:{port}", "--gateway",
                            f"127.0.0.1:{gateway_port}", "--log-socket", str(socket_path)],
                           cwd=ROOT, capture_output=True, text=True, check=True).stdout
    (prefix / "tmp").mkdir()
    (prefix / "nginx.conf").write_text(
        f"worker_processes {workers};\npid {prefix}/nginx.pid;\n"
        f"error_log {prefix}/error.log emerg;\n"  # (a full socket queue: an alert a line)
        "events { worker_connections 4096; }\n"
        + block.replace("http {", "http {\n    access_log off;\n    keepalive_requests 1000000;\n"
                        f"    client_body_temp_path {prefix}/tmp;\n"
                        f"    proxy_temp_path {prefix}/tmp;\n", 1))
    proxy = subprocess.Popen([nginx_binary(), "-p", str(prefix), "-c",
                              str(prefix / "nginx.conf"), "-g", "daemon off;"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    try:
        while not stopping and gateway.poll() is None and proxy.poll() is None:
            time.sleep(0.2)
    finally:
        for process in (proxy, gateway):
            process.terminate()
        for process in (proxy, gateway):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def big_file() -> Path:
    """A 1 MiB body for the download rows' backend (bench/nginx.py's ``files``), where
    nginx's workers (nobody) may read it."""
    directory = Path(tempfile.mkdtemp(prefix="bench-files-"))
    os.chmod(directory, 0o755)
    path = directory / "big.bin"
    path.write_bytes(os.urandom(1024 * 1024))
    return path


if __name__ == "__main__" and sys.argv[1:2] == ["serve"]:
    serve(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
