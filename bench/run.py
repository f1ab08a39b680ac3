"""``make bench``: the gateway's throughput against a bare Flask proxy, same run, same machine.

Each app runs under gunicorn with the gateway's own settings (gthread, one
worker per core, GATEWAY_THREADS threads) in front of one upstream; wrk drives
each for the same time and connections. Figures are reported as ratios to the
baseline measured in this run, because absolute numbers on a shared 2-core
machine say little. Only loopback addresses are used.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import free_port, wait_for_port  # noqa: E402


def gunicorn(app: str, port: int, env: dict, workers: int, threads: int,
             conf: str = "gunicorn.conf.py") -> subprocess.Popen:
    """Every contender under the same gunicorn settings and worker class (the gateway's)."""
    cmd = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / conf), "-b", f"127.0.0.1:{port}",
           "-w", str(workers), "--threads", str(threads), app]
    process = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port, process)
    return process


def wrk(url: str, seconds: int, connections: int) -> float:
    out = subprocess.run(["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s", url],
                         capture_output=True, text=True, check=True).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{url}: {errors.group(1)} failed responses\n{out}")
    return float(match.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is not installed: apt-get install wrk (make bench does this as root)")
        return 1

    workers = int(os.environ.get("GATEWAY_WORKERS") or os.cpu_count() or 2)
    threads = int(os.environ.get("GATEWAY_THREADS") or 128)
    up_port = free_port()
    upstream = gunicorn("bench.apps:upstream", up_port, {}, workers=2, threads=16,
                        conf="bench/upstream.conf.py")
    up_url = f"http://127.0.0.1:{up_port}"
    config = Path(tempfile.mkdtemp()) / "gateway.yaml"
    config.write_text(f"services:\n  users:\n    upstream: {up_url}\n")
    env = {"BENCH_UPSTREAM": up_url, "GATEWAY_CONFIG": str(config),
           "GATEWAY_THREADS": str(threads)}
    contenders = {"flask alone": "bench.apps:flask_hello",
                  "baseline (Flask + requests.Session)": "bench.apps:baseline",
                  "gateway": "wsgi:app"}
    results: dict[str, list[float]] = {name: [] for name in contenders}
    try:
        for _ in range(args.rounds):
            for name, app in contenders.items():
                port = free_port()
                process = gunicorn(app, port, env, workers, threads)
                try:
                    url = f"http://127.0.0.1:{port}/users/1"
                    wrk(url, 1, args.connections)  # warm-up
                    results[name].append(wrk(url, args.seconds, args.connections))
                finally:
                    process.terminate()
                    process.wait()
    finally:
        upstream.terminate()
        upstream.wait()

    best = {name: max(values) for name, values in results.items()}
    base = best["baseline (Flask + requests.Session)"]
    print(f"\n{workers} gthread workers x {threads} threads, {args.connections} connections, "
          f"{args.seconds}s x {args.rounds} rounds (best round)")
    for name, value in best.items():
        print(f"  {name:38} {value:8.0f} req/s   {value / base:5.2f}x baseline")
    return 0


if __name__ == "__main__":
    sys.exit(main())
