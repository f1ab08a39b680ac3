"""``make bench``: the gateway against the peers users would pick, same run, same machine.

Everything runs on loopback: nginx as the backend (``return 200`` with a small
JSON body), nginx ``proxy_pass``, Flask alone, the bare Flask +
``requests.Session`` proxy users write, the seed article's proxy, FastAPI +
httpx under uvicorn, and the gateway proxy-only, with its full chain, in
front of a 200 ms upstream, and at one connection. Every Python contender runs
``--workers`` processes (default 2). wrk drives each in turn for several
interleaved rounds; the table shows medians, and the targets are checked as
ratios between figures of this same run (absolute numbers on a shared 2-core
machine say little).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import issuer, nginx, offload, validation, websocket  # noqa: E402
from bench import keys as api_keys  # noqa: E402
from bench import usage as usage_rows  # noqa: E402
from gateway.config import hash_key  # noqa: E402
from tests.conftest import RedisClusterServers, free_port, wait_for_port  # noqa: E402

BENCH_KEY = "bench-key"
BENCH_REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/14")
SLOW_IDEAL = 256 / 0.2  # req/s with every one of 256 connections waiting 200 ms
#: gunicorn's gthread worker as the gateway ran before gevent (command-line
#: options override gunicorn.conf.py's worker class)
GTHREAD = ("-k", "gthread", "--threads", "128", "--worker-connections", "1128")
#: gunicorn's own gevent worker, which accepts one connection per pass of its
#: loop with several workers (the gateway's worker accepts bursts)
PLAIN_GEVENT = ("-k", "gevent")
#: connections wrk opens at once for the connection-storm rows
STORM = 512


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    #: the server's CPU time (all its processes) per request: steadier than
    #: req/s when other work shares the machine
    cpu_ms: float = 0.0
    requests: int = 0
    #: the busiest child process's share of the children's CPU time (0.5 is an even
    #: split over two workers; 1.0, one worker served every connection)
    busiest: float = 0.0


@dataclass
class Contender:
    name: str
    start: Callable[[int], subprocess.Popen]
    connections: int = 32
    headers: tuple[str, ...] = ()
    #: connections of steady load already running when the measured ones open (a storm
    #: arriving at busy workers); 0: none
    busy: int = 0
    #: a wrk Lua script (e.g. a POST with a body), and the path requested
    script: Path | None = None
    path: str = "/users/1"
    #: seconds of load before the measured run: every worker booted and warm (a worker
    #: loading 100,000 keys takes seconds; measured from its port alone, the row counted
    #: the boot's CPU and the requests queued behind it)
    warmup: float = 1
    results: list[Result] = field(default_factory=list)

    def median(self) -> Result:
        return Result(*(statistics.median(getattr(r, f) for r in self.results)
                        for f in ("rps", "p50_ms", "p99_ms", "errors", "cpu_ms", "requests",
                                  "busiest")))


# -- wrk --------------------------------------------------------------------------

_UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNIT[unit]


def wrk(url: str, seconds: float, connections: int, headers: tuple[str, ...] = (),
        script: Path | None = None) -> Result:
    cmd = ["wrk", "-t", "2" if connections > 1 else "1", "-c", str(connections),
           "-d", f"{seconds:g}s", "--latency", "--timeout", "5s"]
    if script is not None:
        cmd += ["-s", str(script)]
    for header in headers:
        cmd += ["-H", header]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    done = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return Result(rps, p50, p99, errors + (int(non_2xx.group(1)) if non_2xx else 0),
                  requests=done)


# -- the contenders ---------------------------------------------------------------

def _popen(cmd: list[str], env: dict | None = None, root: Path = ROOT) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=root, env={**os.environ, **(env or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def gunicorn(app: str, port: int, env: dict, conf: str = "gunicorn.conf.py",
             extra: tuple[str, ...] = (), root: Path = ROOT) -> subprocess.Popen:
    """:param root: the checkout to run (``--against``: another commit's, in a worktree)."""
    if root != ROOT:  # its gateway package, not this checkout's installed one
        env = {**env, "PYTHONPATH": str(root)}
    return _popen([sys.executable, "-m", "gunicorn", "-c", str(root / conf),
                   "-b", f"127.0.0.1:{port}", *extra, app], env, root)


def uvicorn(app: str, port: int, workers: int, env: dict | None = None) -> subprocess.Popen:
    return _popen([sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port",
                   str(port), "--workers", str(workers), "--no-access-log",
                   "--log-level", "warning"], env)


def gateway_config(path: Path, upstream: str, full_chain: bool, storage: str = BENCH_REDIS,
                   quota_mode: str = "exact") -> Path:
    if full_chain:
        path.write_text(
            f"storage: {storage}\n"
            f"quota: {{mode: {quota_mode}}}\n"
            f"consumers:\n  bench:\n    keys: [{BENCH_KEY}]\n"
            f"services:\n  users:\n    upstream: {upstream}\n"
            "    auth: api_key\n    rate_limit: 100000000/minute\n")
    else:
        path.write_text(f"services:\n  users:\n    upstream: {upstream}\n")
    return path


def jwt_config(path: Path, upstream: str, jwks_uri: str) -> Path:
    """The full chain with a bearer token (RS256) in place of the API key."""
    path.write_text(
        f"storage: {BENCH_REDIS}\n"
        f"issuers:\n  bench:\n    issuer: {issuer.ISSUER}\n    jwks_uri: {jwks_uri}\n"
        f"    audiences: [{issuer.AUDIENCE}]\n    cache_duration: 3600\n"
        f"services:\n  users:\n    upstream: {upstream}\n"
        "    auth: jwt\n    rate_limit: 100000000/minute\n")
    return path


def contenders(workers: int, backend_url: str, backend_port: int, slow_url: str,
               tmp: Path, idp: issuer.BenchIssuer, cluster_url: str,
               against: list[tuple[str, Path]] = (), files_url: str = "") -> list[Contender]:
    gateway_env = {"GATEWAY_WORKERS": str(workers)}
    user_proxy = ("-w", str(workers), "-k", "gthread", "--threads", "8")
    env = {"BENCH_UPSTREAM": backend_url}
    proxy_only = gateway_config(tmp / "proxy.yaml", backend_url, full_chain=False)
    full = gateway_config(tmp / "full.yaml", backend_url, full_chain=True)
    leased = gateway_config(tmp / "lease.yaml", backend_url, full_chain=True, quota_mode="lease")
    on_cluster = gateway_config(tmp / "cluster.yaml", backend_url, full_chain=True,
                                storage=cluster_url)
    slow = gateway_config(tmp / "slow.yaml", slow_url, full_chain=False)
    user_conf = "bench/upstream.conf.py"
    key = (f"X-API-Key: {BENCH_KEY}",)
    with_jwt = jwt_config(tmp / "jwt.yaml", backend_url, idp.jwks_uri)
    bearer = (f"Authorization: Bearer {idp.token()}",)
    post_1k, validated = validation.files(tmp, full)
    in_file, file_key = api_keys.ten_in_file(tmp / "keys-file.yaml", backend_url)
    in_database, database_key = api_keys.many_in_database(tmp / "keys-db.yaml", backend_url)
    usage_on, usage_off = (usage_rows.config(tmp / f"usage-{state}.yaml", backend_url,
                                             hash_key(BENCH_KEY), BENCH_REDIS, state == "on")
                           for state in ("on", "off"))

    # issue 34: the same chain offloaded and not, both behind `gateway nginx`'s nginx
    offload_configs = {(kind, offloaded): offload.config(
        tmp / f"offload-{kind}-{offloaded}.yaml", url, BENCH_KEY, BENCH_REDIS, offloaded)
        for kind, url in (("full", backend_url), ("download", files_url))
        for offloaded in (True, False)}

    def pair(kind: str, offloaded: bool) -> Callable[[int], subprocess.Popen]:
        return lambda p: offload.start(p, offload_configs[kind, offloaded], workers)

    def gateway(config: Path, extra: tuple[str, ...] = (),
                root: Path = ROOT) -> Callable[[int], subprocess.Popen]:
        return lambda p: gunicorn("wsgi:app", p, {**gateway_env, "GATEWAY_CONFIG": str(config)},
                                  extra=extra, root=root)

    # --against REF: the same two rows from another commit, in the same rounds
    earlier = [contender for ref, root in against for contender in (
        Contender(f"{PROXY} @ {ref}", gateway(proxy_only, root=root)),
        Contender(f"{FULL} @ {ref}", gateway(full, root=root), headers=key))]
    return earlier + [
        Contender("backend alone (nginx return 200)", lambda p: nginx.backend(p)),
        Contender("nginx proxy_pass", lambda p: nginx.proxy(p, backend_port, workers)),
        # gunicorn.conf.py validates a gateway config even for another app
        Contender("Flask alone (no upstream)",
                  lambda p: gunicorn("bench.apps:flask_hello", p,
                                     {**gateway_env, "GATEWAY_CONFIG": str(proxy_only)})),
        Contender("Flask + requests.Session",
                  lambda p: gunicorn("bench.apps:baseline", p, env, user_conf, user_proxy)),
        Contender("seed proxy (requests.request)",
                  lambda p: gunicorn("bench.apps:seed", p, env, user_conf, user_proxy)),
        Contender("FastAPI + httpx (uvicorn)",
                  lambda p: uvicorn("bench.fastapi_peer:app", p, workers, env)),
        Contender("gateway, proxy only", gateway(proxy_only)),
        Contender("gateway, full chain", gateway(full), headers=key),
        Contender(FULL_LEASE, gateway(leased), headers=key),
        Contender(FULL_CLUSTER, gateway(on_cluster), headers=key),
        Contender(FULL_JWT, gateway(with_jwt), headers=bearer),
        Contender(validation.PLAIN, gateway(full), headers=key, script=post_1k,
                  path=validation.PATH),
        Contender(validation.VALIDATED, gateway(validated), headers=key, script=post_1k,
                  path=validation.PATH),
        # issue 31: a key looked up by its hash costs the same among 100,000 as among 10
        Contender(api_keys.IN_FILE, gateway(in_file), headers=(f"X-API-Key: {file_key}",),
                  warmup=api_keys.WARMUP),
        # issue 32: usage records cost nothing a request can see
        Contender(usage_rows.ON, gateway(usage_on), headers=key),
        Contender(usage_rows.OFF, gateway(usage_off), headers=key),
        Contender(api_keys.IN_DATABASE, gateway(in_database),
                  headers=(f"X-API-Key: {database_key}",), warmup=api_keys.WARMUP),
        Contender(offload.FULL_THROUGH, pair("full", False), headers=key),
        Contender(offload.FULL_OFFLOADED, pair("full", True), headers=key),
        Contender(offload.DOWNLOAD_THROUGH, pair("download", False), headers=key),
        Contender(offload.DOWNLOAD_OFFLOADED, pair("download", True), headers=key),
        Contender(offload.DOWNLOAD_NGINX, lambda p: nginx.proxy(
            p, int(files_url.rpartition(":")[2]), workers)),
        Contender("200 ms backend alone, 256 conns", lambda p: nginx.slow_backend(p),
                  connections=256),
        Contender("gateway, 200 ms upstream, 256 conns", gateway(slow), connections=256),
        # the worker model, decided by these rows: the same gateway under gthread
        Contender("gateway, proxy only, gthread", gateway(proxy_only, GTHREAD)),
        Contender("gateway, full chain, gthread", gateway(full, GTHREAD), headers=key),
        Contender("gateway, 200 ms upstream, gthread", gateway(slow, GTHREAD), connections=256),
        # a connection storm: 512 connections opened at once while 64 others keep the
        # workers busy, then requests on all of them for the round
        Contender(STORM_ROW, gateway(proxy_only), connections=STORM, busy=64),
        Contender(STORM_PLAIN_ROW, gateway(proxy_only, PLAIN_GEVENT), connections=STORM,
                  busy=64),
        Contender("backend alone, 1 connection", lambda p: nginx.backend(p), connections=1),
        Contender("gateway proxy only, 1 connection", gateway(proxy_only), connections=1),
    ]


_TICKS = os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and all its descendants (from /proc)."""
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rpartition(")")[2].split()
            total += (int(fields[11]) + int(fields[12])) / _TICKS
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        pending += [int(child) for child in children]
    return total


def workers_of(pid: int) -> list[int]:
    """A gunicorn master's workers: its children but its config checker
    (gateway/serve/checker.py), which serves no request."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    workers = []
    for child in children:
        try:
            if b"gateway.serve.checker" not in Path(f"/proc/{child}/cmdline").read_bytes():
                workers.append(int(child))
        except OSError:
            continue
    return workers


def children_cpu_seconds(pid: int) -> dict[int, float]:
    """CPU seconds of each worker of a gunicorn master (each child process of another
    contender) and its descendants."""
    return {child: tree_cpu_seconds(child) for child in workers_of(pid)}


def measure(contender: Contender, seconds: float) -> None:
    port = free_port()
    process = contender.start(port)
    try:
        wait_for_port(port, process)
        url = f"http://127.0.0.1:{port}{contender.path}"
        wrk(url, contender.warmup, contender.connections, contender.headers, contender.script)
        load = None
        if contender.busy:  # the workers are busy before the measured connections open
            load = subprocess.Popen(["wrk", "-t", "1", "-c", str(contender.busy), "-d",
                                     f"{seconds + 2:g}s", url], stdout=subprocess.DEVNULL)
            time.sleep(1)
        cpu_before = tree_cpu_seconds(process.pid)
        children_before = children_cpu_seconds(process.pid)
        result = wrk(url, seconds, contender.connections, contender.headers, contender.script)
        cpu = tree_cpu_seconds(process.pid) - cpu_before
        spent = [after - children_before.get(child, after)
                 for child, after in children_cpu_seconds(process.pid).items()]
        if len(spent) > 1 and sum(spent) > 0:
            result.busiest = max(spent) / sum(spent)
        if load is not None:
            load.wait(timeout=seconds + 10)
        result.cpu_ms = cpu * 1000.0 / max(1, result.requests)
        contender.results.append(result)
    finally:
        process.terminate()
        process.wait(timeout=30)


# -- memory over 100k requests ----------------------------------------------------

def worker_rss_kib(master_pid: int) -> list[int]:
    rss = []
    for pid in workers_of(master_pid):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss.append(int(line.split()[1]))
    return rss


def rss_over(requests_count: int, backend_url: str, workers: int, tmp: Path) -> tuple[int, int]:
    """Total worker RSS (KiB) after a warm-up, and after ``requests_count`` more requests.

    The warm-up runs 20k requests: a worker's threads start (and take their
    stacks) as load first reaches them, which is growth, but not per request.
    """
    config = gateway_config(tmp / "rss.yaml", backend_url, full_chain=True)
    port = free_port()
    process = gunicorn("wsgi:app", port, {"GATEWAY_WORKERS": str(workers),
                                           "GATEWAY_CONFIG": str(config)})
    url = f"http://127.0.0.1:{port}/users/1"
    headers = (f"X-API-Key: {BENCH_KEY}",)
    try:
        wait_for_port(port, process)
        def run(count: int) -> None:
            done = 0
            while done < count:
                done += wrk(url, 5, 32, headers).requests

        run(20_000)
        before = sum(worker_rss_kib(process.pid))
        run(requests_count)
        return before, sum(worker_rss_kib(process.pid))
    finally:
        process.terminate()
        process.wait(timeout=30)


# -- the report -------------------------------------------------------------------

PROXY, FULL = "gateway, proxy only", "gateway, full chain"
FULL_JWT = "gateway jwt, full chain (RS256)"
FULL_LEASE = "gateway, full chain, quota lease"
FULL_CLUSTER = "gateway, full chain, Redis Cluster"
SLOW = "gateway, 200 ms upstream, 256 conns"
STORM_ROW = f"gateway, proxy only, {STORM} conns at once"
STORM_PLAIN_ROW = f"gateway, proxy only, {STORM} conns at once, gunicorn's gevent worker"

#: (numerator, denominator, target): each ratio is taken within one round
#: (the two were measured minutes apart at most), then the median over rounds
RATIOS = [
    (PROXY, "Flask + requests.Session", 1.5),
    (PROXY, "Flask alone (no upstream)", 0.6),
    (FULL, PROXY, 0.75),
    *offload.RATIOS,
    (FULL_LEASE, PROXY, 0.85),
    (FULL, "seed proxy (requests.request)", 2.0),
    (FULL, "FastAPI + httpx (uvicorn)", 2.0),
    (FULL_JWT, FULL, 0.9),
    (validation.VALIDATED, validation.PLAIN, 0.8),
    (api_keys.IN_DATABASE, api_keys.IN_FILE, 0.95),
    (usage_rows.ON, usage_rows.OFF, 0.97),
]


def report(field: dict[str, Contender], rss: tuple[int, int] | None) -> list[tuple[str, bool]]:
    def ratio(top: str, bottom: str) -> float:
        pairs = zip(field[top].results, field[bottom].results, strict=True)
        return statistics.median(a.rps / b.rps for a, b in pairs)

    checks = [(f"{top} / {bottom} = {ratio(top, bottom):.2f} (>= {target:g})",
               ratio(top, bottom) >= target) for top, bottom, target in RATIOS
              if top in field and bottom in field]  # --only runs some rows
    for row in (PROXY, FULL):  # --against: this checkout against another commit
        for name in field:
            if name.startswith(f"{row} @ ") and row in field:
                checks.append((f"{row} / {name} = {ratio(row, name):.2f} (>= 0.97)",
                               ratio(row, name) >= 0.97))
    if PROXY in field:
        # every round, not the median: one round with one worker doing all the work
        # halves that round's req/s and every ratio taken in it
        busiest = max(r.busiest for r in field[PROXY].results)
        checks.append((f"{PROXY}: the busiest worker's share of CPU, worst round = "
                       f"{busiest:.2f} (<= 0.6)", busiest <= 0.6))
    if STORM_ROW in field:
        storm = field[STORM_ROW].median()
        checks.append((f"{STORM} connections at once: socket errors and timeouts = "
                       f"{storm.errors:.0f} (0), p99 {storm.p99_ms:.1f} ms", storm.errors == 0))
    if FULL_JWT in field:
        checks.append((f"jwt full chain errors = {field[FULL_JWT].median().errors:.0f} (0)",
                       field[FULL_JWT].median().errors == 0))
    if not {FULL, SLOW, "gateway proxy only, 1 connection"} <= field.keys():
        return checks
    full, slow = field[FULL].median(), field[SLOW].median()
    added = (field["gateway proxy only, 1 connection"].median().p50_ms
             - field["backend alone, 1 connection"].median().p50_ms)
    checks += [
        (f"full chain errors = {full.errors:.0f} (0)", full.errors == 0),
        (f"200 ms upstream / {SLOW_IDEAL:.0f} = {slow.rps / SLOW_IDEAL:.2f} (>= 0.85), "
         f"errors {slow.errors:.0f} (0)", slow.rps / SLOW_IDEAL >= 0.85 and slow.errors == 0),
        (f"latency added at 1 connection (p50) = {added:.2f} ms (<= 1 ms)", added <= 1.0),
    ]
    if rss is not None:
        before, after = rss
        change = (after - before) / before
        checks.append((f"worker RSS over 100k requests: {before} -> {after} KiB "
                       f"({change:+.1%}, within ±5 %)", abs(change) <= 0.05))
    return checks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", default="", help="run only contenders whose name has this "
                        "(several: a|b; =name: that name exactly)")
    parser.add_argument("--no-rss", action="store_true", help="skip the 100k-request RSS check")
    parser.add_argument("--against", metavar="REF", action="append", default=[],
                        help="also run the proxy-only and full chain rows from this git "
                        "commit (a worktree; repeatable), for a ratio of the same run")
    parser.add_argument("--hogs", type=int, default=0, help="processes that burn CPU for the "
                        "whole run: the figures of a busy machine (issue 30's storm)")
    args = parser.parse_args()
    for tool in ("wrk",):
        if not shutil.which(tool):
            print(f"{tool} is not installed: apt-get install {tool} (make bench does this as root)")
            return 1
    nginx.nginx_binary()

    tmp = Path(tempfile.mkdtemp(prefix="bench-"))
    cluster = RedisClusterServers(tmp)
    cluster.start()
    backend_port, slow_port = free_port(), free_port()
    backend = nginx.backend(backend_port)
    slow = nginx.slow_backend(slow_port)
    files_port = free_port()
    big = offload.big_file()
    files = nginx.files(files_port, big)
    # the offload rows' log socket, sized as the deployment guide says (root only)
    from gateway.serve.logsocket import HOST_SETTINGS

    settings = {Path("/proc/sys", name.replace(".", "/")): value
                for name, value in HOST_SETTINGS.items()}
    settings_before = {path: path.read_text().strip() for path in settings}
    try:
        for path, value in settings.items():
            path.write_text(str(value))
    except OSError:
        print("net.unix.max_dgram_qlen and net.core.wmem_default stay as they are (not "
              "root): the offload rows' nginx may drop log lines", file=sys.stderr)
    backend_url = f"http://127.0.0.1:{backend_port}"
    hogs: list[subprocess.Popen] = []
    try:
        wait_for_port(backend_port, backend)
        wait_for_port(slow_port, slow)
        wait_for_port(files_port, files)
        idp = issuer.BenchIssuer(free_port())
        against = [(ref, tmp / f"against-{i}") for i, ref in enumerate(args.against)]
        for ref, root in against:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet",
                            str(root), ref], check=True)
        field = contenders(args.workers, backend_url, backend_port,
                           f"http://127.0.0.1:{slow_port}", tmp, idp, cluster.url, against,
                           f"http://127.0.0.1:{files_port}")
        field = [c for c in field if any(c.name == part[1:] if part.startswith("=")
                                         else part in c.name for part in args.only.split("|"))]
        hogs.extend(busy_loop() for _ in range(args.hogs))
        for round_ in range(args.rounds):
            for contender in field:
                measure(contender, args.seconds)
            print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr, flush=True)
        rss = None if args.no_rss or args.only else rss_over(100_000, backend_url, args.workers,
                                                             tmp)
        flush = None
        if not args.only or "usage" in args.only:
            import redis

            client = redis.Redis.from_url(BENCH_REDIS)
            flush = usage_rows.flush_cost(tmp / "usage-on.yaml", lambda: client)
        ws_rows = websocket_rows(args, tmp) if not args.only or "websocket" in args.only \
            else None
    finally:
        for process in (backend, slow, files, *hogs):
            process.terminate()
            process.wait(timeout=30)
        shutil.rmtree(big.parent, ignore_errors=True)
        for path, value in settings_before.items():
            try:
                path.write_text(value)
            except OSError:
                pass
        cluster.stop()
        for i, _ in enumerate(args.against):
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                            str(tmp / f"against-{i}")], check=False)

    by_name = {c.name: c.median() for c in field}
    if args.hogs:
        print(f"\n{args.hogs} processes burned CPU throughout (--hogs)", end="")
    print(f"\n{os.cpu_count()} cores, {args.workers} workers per Python contender, medians of "
          f"{args.rounds} interleaved rounds of {args.seconds:g} s (wrk; 32 connections "
          "unless noted)\n")
    print(f"| {'contender':40} | {'req/s':>8} | {'p50 ms':>7} | {'p99 ms':>7} | errors | "
          "CPU ms/req | req/s of each round |")
    print(f"|{'-' * 42}|{'-' * 10}|{'-' * 9}|{'-' * 9}|--------|------------|"
          "---------------------|")
    for contender in field:
        r = by_name[contender.name]
        rounds = " ".join(f"{x.rps:.0f}" for x in contender.results)
        print(f"| {contender.name:40} | {r.rps:8.0f} | {r.p50_ms:7.2f} | {r.p99_ms:7.2f} | "
              f"{r.errors:6.0f} | {r.cpu_ms:10.3f} | {rounds} |")
    print()
    for text, met in report({c.name: c for c in field}, rss):
        print(f"{'met    ' if met else 'NOT MET'}  {text}")
    if flush is not None:
        print()
        for where, ms in flush.items():
            print(f"usage flush of {usage_rows.PAIRS} consumer × route pairs, {where}: "
                  f"{ms:.1f} ms (median of 20)")
    if ws_rows is not None:
        print()
        for line in ws_rows.report():
            print(line)
    if args.only:
        return 0
    print()
    for text in worker_model(by_name):
        print(text)
    return 0


def busy_loop() -> subprocess.Popen:
    """A process that burns one core until terminated (``--hogs``)."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def websocket_rows(args, tmp: Path) -> websocket.WebSocketRows:
    """Echo round trips direct and through the gateway; 2,000 idle connections held."""
    upstream_port = free_port()
    upstream = websocket.start_upstream(upstream_port)
    config = tmp / "websocket.yaml"
    config.write_text(f"services:\n  chat:\n    upstream: http://127.0.0.1:{upstream_port}\n"
                      "    websocket: true\n")
    try:
        wait_for_port(upstream_port, upstream)
        return websocket.measure_rows(
            args.rounds, args.seconds,
            lambda port, env: gunicorn("wsgi:app", port, {
                "GATEWAY_WORKERS": str(args.workers), "GATEWAY_CONFIG": str(config), **env}),
            upstream_port, free_port, wait_for_port, worker_rss_kib,
            offloaded_start=lambda port: offload.start(
                port, offload.websocket_config(tmp / "websocket-offload.yaml", upstream_port),
                args.workers),
            nginx_start=lambda port: nginx.websocket_proxy(port, upstream_port, args.workers))
    finally:
        upstream.terminate()
        upstream.wait(timeout=30)


#: (the gateway's row, the same under gthread): how the worker model was chosen
WORKER_MODEL = [(PROXY, "gateway, proxy only, gthread"), (FULL, "gateway, full chain, gthread"),
                (SLOW, "gateway, 200 ms upstream, gthread")]


def worker_model(by_name: dict[str, Result]) -> list[str]:
    """gevent against gthread on the same rows: req/s and CPU time per request."""
    lines = []
    for gevent_row, gthread_row in WORKER_MODEL:
        if gevent_row not in by_name or gthread_row not in by_name:
            continue  # --only left one of them out
        ours, theirs = by_name[gevent_row], by_name[gthread_row]
        lines.append(f"worker model  {gevent_row}: gevent {ours.rps:.0f} req/s, "
                     f"{ours.cpu_ms:.3f} CPU ms/req; gthread {theirs.rps:.0f} req/s, "
                     f"{theirs.cpu_ms:.3f} CPU ms/req ({ours.rps / theirs.rps:.2f}× the req/s)")
    return lines


if __name__ == "__main__":
    sys.exit(main())
