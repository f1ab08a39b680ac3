"""The usage rows (issue 32): the full chain with usage records on and off, on a SQLite
database, and what one flush of a worker costs at 1,000 consumer × route pairs."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from click.testing import CliRunner

from gateway.cli import main as cli
from gateway.db import open_engine
from gateway.db.usage import usage_writer
from gateway.policies.allowance import ServiceCounts
from gateway.usage import Tally

ON = "gateway, full chain, usage records on"
OFF = "gateway, full chain, usage records off"
#: consumer × route pairs in one flush, as the issue asks it measured
PAIRS = 1000


def config(path: Path, upstream: str, key_hash: str, storage: str, enabled: bool) -> Path:
    """The bench's full chain (a key, a quota) on a SQLite database, usage on or off."""
    path.write_text(
        f"storage: {storage}\ndatabase: sqlite:///bench-usage.db\n"
        f"usage: {{enabled: {str(enabled).lower()}}}\n"
        f"consumers:\n  bench:\n    keys: ['{key_hash}']\n"
        f"services:\n  users:\n    upstream: {upstream}\n"
        "    auth: api_key\n    rate_limit: 100000000/minute\n")
    (path.parent / "bench-usage.db").unlink(missing_ok=True)
    assert CliRunner().invoke(cli, ["db", "upgrade", "--config", str(path)]).exit_code == 0
    return path


def flush_cost(path: Path, redis_connection=None, flushes: int = 20) -> dict[str, float]:
    """Median ms of one flush of :data:`PAIRS` rows: into the usage table (SQLite), and
    into the per-period counts ``/_gateway/usage`` reads (Redis, when given)."""
    tally = Tally()
    now = time.time()
    for i in range(PAIRS):
        tally.count(f"consumer-{i // 2}", f"route-{i % 2}", now, 200, 100, 1000, 12.0)
    engine = open_engine("sqlite:///bench-usage.db", str(path))
    write = usage_writer(engine)
    costs = {"SQLite usage table": _median_ms(lambda: write(tally.rows), flushes)}
    if redis_connection is not None:
        counts = ServiceCounts(redis_connection)
        costs["Redis per-period counts"] = _median_ms(lambda: counts.write(tally.rows), flushes)
    engine.dispose()
    return costs


def _median_ms(action, times: int) -> float:
    spent = []
    for _ in range(times):
        started = time.perf_counter()
        action()
        spent.append((time.perf_counter() - started) * 1000.0)
    return statistics.median(spent)
