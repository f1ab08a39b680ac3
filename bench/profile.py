"""``python -m bench.profile``: where one gateway worker spends its time.

Starts the bench's nginx backend and a one-worker gateway (proxy only, or the
full chain exact or with leases), drives it with wrk, samples the worker with
py-spy and prints the functions with the most samples, inclusive and own, as
shares of all the worker's samples. What the README's Speed section cites.

    python -m bench.profile --chain lease --seconds 10
    python -m bench.profile --chain proxy --top 40 --match gateway/
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import nginx
from bench.run import BENCH_KEY, gateway_config, gunicorn, workers_of, wrk
from tests.conftest import free_port, wait_for_port

CHAINS = {"proxy": (False, "exact"), "exact": (True, "exact"), "lease": (True, "lease")}


def worker_pid(master: int) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        workers = workers_of(master)
        if workers:
            return workers[0]
        time.sleep(0.1)
    raise RuntimeError("the gateway's worker did not start")


def tally(raw: Path, match: str) -> tuple[int, collections.Counter, collections.Counter]:
    """Samples in all, and per function: inclusive (once per stack) and own (leaf)."""
    inclusive: collections.Counter = collections.Counter()
    own: collections.Counter = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = [f for f in stack.split(";") if f]
        total += count
        for frame in set(frames):
            if match in frame:
                inclusive[frame] += count
        if frames and match in frames[-1]:
            own[frames[-1]] += count
    return total, inclusive, own


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chain", choices=CHAINS, default="lease")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--match", default="", help="only frames containing this text")
    args = parser.parse_args()
    full_chain, mode = CHAINS[args.chain]
    with tempfile.TemporaryDirectory() as tmp:
        backend_port, port = free_port(), free_port()
        backend = nginx.backend(backend_port)
        config = gateway_config(Path(tmp) / "gateway.yaml", f"http://127.0.0.1:{backend_port}",
                                full_chain, quota_mode=mode)
        gateway = gunicorn("wsgi:app", port, {"GATEWAY_WORKERS": "1",
                                              "GATEWAY_CONFIG": str(config)})
        raw = Path(tmp) / "profile.txt"
        try:
            wait_for_port(port, gateway)
            url = f"http://127.0.0.1:{port}/users/1"
            headers = (f"X-API-Key: {BENCH_KEY}",) if full_chain else ()
            wrk(url, 1, args.connections, headers)
            spy = subprocess.Popen(
                [os.path.join(os.path.dirname(sys.executable), "py-spy"), "record", "-r", "400",
                 "-f", "raw", "-o", str(raw), "-d", str(int(args.seconds)), "-p",
                 str(worker_pid(gateway.pid))], stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
            result = wrk(url, args.seconds, args.connections, headers)
            spy.wait(timeout=args.seconds + 30)
        finally:
            gateway.terminate()
            backend.terminate()
            gateway.wait(timeout=30)
        total, inclusive, own = tally(raw, args.match)
    print(f"{args.chain}: {result.rps:.0f} req/s (1 worker, py-spy attached), {total} samples")
    for title, counter in (("inclusive", inclusive), ("own", own)):
        print(f"\n-- {title} --")
        for frame, count in counter.most_common(args.top):
            print(f"{100 * count / total:5.1f} %  {frame}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
