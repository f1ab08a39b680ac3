"""WebSocket rows of ``make bench``: echo round trips, and idle connections held.

- Echo: the same asyncio client (``websockets``), 32 connections each sending a
  small message and waiting for its echo, against the upstream directly and
  through the gateway (two gunicorn workers), interleaved rounds. Target:
  through the gateway ≥ 0.5 × direct.
- Idle: 2,000 WebSockets opened through two workers and left open; the
  workers' RSS before and after, per connection.

The upstream is ``python -m bench.websocket serve PORT``: an asyncio echo
server in its own process, so it is never what the client waits on.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

ECHO_CONNECTIONS = 32
IDLE_CONNECTIONS = 2000


def serve(port: int) -> None:
    from websockets.asyncio.server import serve as serve_async

    async def echo(connection) -> None:
        async for message in connection:
            await connection.send(message)

    async def main() -> None:
        async with serve_async(echo, "127.0.0.1", port, max_queue=None, compression=None,
                               ping_interval=None):
            await asyncio.Future()
    asyncio.run(main())


def round_trips(url: str, seconds: float, connections: int = ECHO_CONNECTIONS) -> float:
    """Echo round trips per second over ``connections`` connections for ``seconds``."""
    from websockets.asyncio.client import connect

    async def main() -> int:
        sockets = await asyncio.gather(*(connect(url, compression=None, ping_interval=None,
                                                 open_timeout=30)
                                         for _ in range(connections)))
        deadline = time.monotonic() + seconds
        done = 0

        async def loop(ws) -> None:
            nonlocal done
            while time.monotonic() < deadline:
                await ws.send("ping")
                await ws.recv()
                done += 1
        await asyncio.gather(*(loop(ws) for ws in sockets))
        await asyncio.gather(*(ws.close() for ws in sockets))
        return done
    return asyncio.run(main()) / seconds


def hold_idle(url: str, count: int, measure) -> tuple[int, int]:
    """Open ``count`` connections and keep them; ``measure()`` before and while they are
    open (the workers' RSS)."""
    from websockets.asyncio.client import connect

    async def main() -> tuple[int, int]:
        before = measure()
        sockets = []
        for start in range(0, count, 200):  # in batches: a storm is another row
            sockets += await asyncio.gather(*(
                connect(url, compression=None, ping_interval=None, open_timeout=60)
                for _ in range(start, min(count, start + 200))))
        await asyncio.sleep(2)
        for ws in sockets[:: max(1, count // 20)]:  # a sample of them still answers
            await ws.send("still there?")
            assert await ws.recv() == "still there?"
        during = measure()
        await asyncio.gather(*(ws.close() for ws in sockets))
        return before, during
    return asyncio.run(main())


@dataclass
class WebSocketRows:
    direct: list[float] = field(default_factory=list)
    gateway: list[float] = field(default_factory=list)
    #: through an offloaded service: nginx carries the connection (issue 34)
    offloaded: list[float] = field(default_factory=list)
    #: through nginx alone (no gateway): what any proxy hop costs on this machine
    nginx: list[float] = field(default_factory=list)
    idle: tuple[int, int] | None = None

    def report(self) -> list[str]:
        lines = []
        if self.direct:
            lines += [_row(f"direct, {ECHO_CONNECTIONS} connections", self.direct),
                      _row("through the gateway", self.gateway),
                      _target("through the gateway", self.gateway, self.direct, 0.5)]
        if self.offloaded:
            lines += [_row("offloaded (nginx carries it)", self.offloaded),
                      _target("offloaded", self.offloaded, self.direct, 0.9)]
        if self.nginx:
            lines.append(_row("nginx proxy_pass alone (no gateway)", self.nginx))
            if self.offloaded:
                ratio = _ratio(self.offloaded, self.nginx)
                lines.append(f"         WebSocket echo offloaded / nginx alone = {ratio:.2f}")
        if self.idle is not None:
            before, during = self.idle
            lines.append(f"{IDLE_CONNECTIONS} idle WebSockets held by 2 workers: worker RSS "
                         f"{before} -> {during} KiB, "
                         f"{(during - before) / IDLE_CONNECTIONS:.1f} KiB per connection")
        return lines


def _row(name: str, rounds: list[float]) -> str:
    return (f"| WebSocket echo, {name} | {statistics.median(rounds):.0f} round trips/s | "
            f"rounds: {' '.join(f'{r:.0f}' for r in rounds)} |")


def _ratio(top: list[float], bottom: list[float]) -> float:
    """The median of the rounds' ratios (each round's two were measured together)."""
    return statistics.median(t / b for t, b in zip(top, bottom, strict=True))


def _target(name: str, top: list[float], direct: list[float], target: float) -> str:
    ratio = _ratio(top, direct)
    return (f"{'met    ' if ratio >= target else 'NOT MET'}  WebSocket echo {name} / direct "
            f"= {ratio:.2f} (>= {target:g})")


def measure_rows(rounds: int, seconds: float, gateway_start, upstream_port: int,
                 free_port, wait_for_port, worker_rss, offloaded_start=None,
                 nginx_start=None) -> WebSocketRows:
    """:param gateway_start: ``f(port, env) -> Popen`` of a two-worker gateway whose
        ``chat`` service is the echo upstream.
    :param offloaded_start: ``f(port) -> Popen`` of nginx and a gateway offloading it.
    :param nginx_start: ``f(port) -> Popen`` of nginx alone in front of the upstream."""
    rows = WebSocketRows()
    direct = f"ws://127.0.0.1:{upstream_port}/"
    for number in range(rounds):
        rows.direct.append(round_trips(direct, seconds))
        port = free_port()
        gateway = gateway_start(port, {})
        try:
            wait_for_port(port, gateway)
            round_trips(f"ws://127.0.0.1:{port}/chat/", 1)  # warm-up
            rows.gateway.append(round_trips(f"ws://127.0.0.1:{port}/chat/", seconds))
        finally:
            gateway.terminate()
            gateway.wait(timeout=30)
        for start, path, results in ((offloaded_start, "/chat/", rows.offloaded),
                                     (nginx_start, "/", rows.nginx)):
            if start is None:
                continue
            port = free_port()
            proxy = start(port)
            try:
                wait_for_port(port, proxy, timeout=90)
                round_trips(f"ws://127.0.0.1:{port}{path}", 1)  # warm-up
                results.append(round_trips(f"ws://127.0.0.1:{port}{path}", seconds))
            finally:
                proxy.terminate()
                proxy.wait(timeout=60)
        print(f"websocket round {number + 1}/{rounds} done", file=sys.stderr, flush=True)
    port = free_port()
    # room for every connection, with some to spare for the sample's probes
    gateway = gateway_start(port, {"GATEWAY_CONNECTIONS": str(IDLE_CONNECTIONS // 2 + 200)})
    try:
        wait_for_port(port, gateway)
        round_trips(f"ws://127.0.0.1:{port}/chat/", 1, connections=8)
        rows.idle = hold_idle(f"ws://127.0.0.1:{port}/chat/", IDLE_CONNECTIONS,
                              lambda: sum(worker_rss(gateway.pid)))
    finally:
        gateway.terminate()
        gateway.wait(timeout=30)
    return rows


def start_upstream(port: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bench.websocket", "serve", str(port)],
                            cwd=ROOT)


if __name__ == "__main__" and sys.argv[1:2] == ["serve"]:
    serve(int(sys.argv[2]))
