"""Usage per consumer, service and hour, added up in each worker and written in batches.

:mod:`.tally` is the arithmetic (a row of counts per consumer × service × hour,
the latency histogram's buckets, percentiles read from them); :mod:`.recorder`
holds a worker's tally and hands it to its outboxes (the database's table,
gateway/db/usage.py; the per-period counts ``/_gateway/usage`` reads) every
``usage.flush_seconds``, never on a request, and once more when the worker
stops. Nothing here does I/O itself: the app wires the outboxes in.
"""

from .recorder import Outbox, UsageRecorder, flush_all
from .tally import ANONYMOUS, COUNTS, LATENCY_BOUNDS, LATENCY_COLUMNS, Tally, percentile

__all__ = ["ANONYMOUS", "COUNTS", "LATENCY_BOUNDS", "LATENCY_COLUMNS", "Outbox", "Tally",
           "UsageRecorder", "flush_all", "percentile"]
