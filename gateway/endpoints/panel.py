"""The status page's consumers panel: who used the gateway most in the last hour, and
whose allowance is nearly spent.

Read from the usage records (gateway/db/usage.py), so only with a ``database:``,
and never by the request that asks for the page: :meth:`ConsumersPanel.snapshot`
answers what was last read and, when that is older than :data:`REFRESH`
seconds, has a background thread read it again (the page asks every few
seconds, so it shows the new reading at its next refresh). "The last hour" is
the records of the current hour and the one before (records are hourly). An
allowance is "nearly spent" at :data:`NEARLY_SPENT` of it, read from its
counter in the storage for the consumers busiest this period.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from ..extension import Gateway
from ..policies.allowance import period_of

log = logging.getLogger("gateway.status")

#: Seconds a reading is served before it is read again.
REFRESH = 5.0
#: The share of an allowance from which the panel lists it.
NEARLY_SPENT = 0.8
#: The consumers whose allowance is looked at (the busiest of the month).
LOOKED_AT = 500


class ConsumersPanel:
    """The panel's last reading, refreshed in the background when asked for."""

    def __init__(self, gateway: Gateway):
        self.gateway = gateway
        self.clock = gateway.clock.time
        self.reading: dict[str, Any] | None = None
        self.read_at = 0.0
        self._reading = threading.Lock()

    def snapshot(self) -> dict[str, Any]:
        """``{"top": [...], "quotas": [...]}`` as last read (empty until the first reading),
        or ``{"unavailable": why}`` without a database."""
        if self.gateway.follower is None:
            return {"unavailable": "usage records need database: in gateway.yaml"}
        if self.clock() - self.read_at >= REFRESH and self._reading.acquire(blocking=False):
            threading.Thread(target=self._refresh, daemon=True,
                             name="gateway-consumers-panel").start()
        return self.reading or {"top": [], "quotas": [], "read_at": None}

    def _refresh(self) -> None:
        try:
            self.reading = self.read()
            self.read_at = self.clock()
        except Exception as error:  # the database or the store down: the last reading stays
            log.warning("status page: consumers panel not refreshed: %s", error)
            self.read_at = self.clock()  # (tried again after REFRESH, not at every ask)
        finally:
            self._reading.release()

    def read(self) -> dict[str, Any]:
        from ..db.usage import active_since, busiest

        gateway = self.gateway
        assert gateway.follower is not None
        engine = gateway.follower.engine
        now = datetime.fromtimestamp(self.clock(), UTC)
        last_hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
        quotas: list[dict[str, Any]] = []
        allowances = gateway.quota_allowances
        if allowances is not None:
            month, _ = period_of(now.timestamp(), "month")
            for name in active_since(engine, month, LOOKED_AT):
                consumer = gateway.directory.consumer(name)
                if consumer is None or consumer.quota is None:
                    continue
                used, _, reset = allowances.used(name, consumer.quota)
                if used >= NEARLY_SPENT * consumer.quota.amount:
                    quotas.append({"consumer": name, "plan": consumer.plan,
                                   "quota": str(consumer.quota), "used": used,
                                   "limit": consumer.quota.amount,
                                   "share": round(used / consumer.quota.amount, 3),
                                   "reset": reset})
        quotas.sort(key=lambda q: (-float(q["share"]), str(q["consumer"])))
        return {"top": busiest(engine, last_hour), "quotas": quotas,
                "read_at": now.isoformat(timespec="seconds")}
