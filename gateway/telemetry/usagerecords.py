"""The usage recorder of a worker, or of the offload log reader: where its counts go.

Every ``usage.flush_seconds`` the counts go to the storage's per-period counts
(``/_gateway/usage``) and, with a database, to its usage table (gateway/usage).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ..clock import SYSTEM, Clock
from ..config import GatewayConfig
from ..usage import Outbox, UsageRecorder
from ..usage.tally import Key
from . import metrics


def usage_recorder(config: GatewayConfig, write_counts: Callable[[Mapping[Key, list[int]]], None],
                   engine, clock: Clock = SYSTEM) -> UsageRecorder:
    """A started recorder, flushing to ``write_counts`` (the per-period counts:
    gateway/policies/allowance.py's ``ServiceCounts.write``) and, given a database's
    SQLAlchemy ``engine``, to its usage table."""
    outboxes = [Outbox("the storage", write_counts, on_dropped=metrics.usage_dropped)]
    if engine is not None:
        from ..db.usage import usage_writer

        outboxes.append(Outbox("the database", usage_writer(engine),
                               on_dropped=metrics.usage_dropped))
    recorder = UsageRecorder(outboxes, config.usage.flush_seconds, clock.time)
    recorder.start()
    return recorder
