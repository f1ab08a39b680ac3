"""A worker's usage counts: one row of integers per consumer × service × hour.

A row holds :data:`COUNTS` in order: requests; answers by class (``status_429``
is counted in ``status_4xx`` too); request and response body bytes; and the
latency histogram, one count per bucket of :data:`LATENCY_BOUNDS` (ms, upper
bounds) and one for what is above. Rows of the same key add up, wherever they
were counted, so a histogram read for a day or a month is the sum of its hours'
and a percentile reads as the upper bound of the bucket it falls in.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence

#: The consumer of requests that named none (no key, a refused one): a reserved name.
ANONYMOUS = "anonymous"
#: The histogram's upper bounds in ms; the last bucket holds what is above 10 s.
LATENCY_BOUNDS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
LATENCY_COLUMNS = (*(f"latency_le_{bound}" for bound in LATENCY_BOUNDS), "latency_over")
#: A row's counts, in order (the database's columns: gateway/db/schema.py).
COUNTS = ("requests", "status_2xx", "status_3xx", "status_4xx", "status_5xx", "status_429",
          "bytes_in", "bytes_out", *LATENCY_COLUMNS)
_FIRST_BUCKET = COUNTS.index("latency_le_5")
_CLASS = {2: 1, 3: 2, 4: 3, 5: 4}
_429 = COUNTS.index("status_429")

#: (consumer, service, the hour's start in seconds since the epoch)
Key = tuple[str, str, int]


class Tally:
    """Rows of counts by key, added to one request at a time or row by row."""

    def __init__(self) -> None:
        self.rows: dict[Key, list[int]] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def count(self, consumer: str, service: str, at: float, status: int, bytes_in: int,
              bytes_out: int, duration_ms: float) -> None:
        """One request, answered with ``status`` after ``duration_ms``."""
        key = (consumer, service, int(at) // 3600 * 3600)
        row = self.rows.get(key)
        if row is None:
            row = self.rows[key] = [0] * len(COUNTS)
        row[0] += 1
        column = _CLASS.get(status // 100)
        if column is not None:
            row[column] += 1
        if status == 429:
            row[_429] += 1
        row[6] += bytes_in
        row[7] += bytes_out
        row[_FIRST_BUCKET + bisect.bisect_left(LATENCY_BOUNDS, duration_ms)] += 1

    def add(self, other: Tally) -> None:
        """``other``'s rows added to these."""
        for key, counts in other.rows.items():
            row = self.rows.get(key)
            if row is None:
                self.rows[key] = list(counts)
            else:
                for i, value in enumerate(counts):
                    row[i] += value

    def drop_oldest(self, keep: int) -> int:
        """Forget the oldest rows beyond ``keep``; returns the requests they held."""
        if len(self.rows) <= keep:
            return 0
        dropped = 0
        for key in sorted(self.rows, key=lambda k: k[2])[:len(self.rows) - keep]:
            dropped += self.rows.pop(key)[0]
        return dropped


def percentile(buckets: Sequence[int], share: float) -> int | None:
    """The upper bound (ms) of the bucket the ``share`` (0.5: the median) falls in;
    the bucket above 10 s reads as 10000; None without requests."""
    total = sum(buckets)
    if not total:
        return None
    rank = share * total
    seen = 0
    for bound, count in zip((*LATENCY_BOUNDS, LATENCY_BOUNDS[-1]), buckets, strict=True):
        seen += count
        if seen >= rank:
            return bound
    return LATENCY_BOUNDS[-1]


def summed(rows: Iterable[Sequence[int]]) -> list[int]:
    total = [0] * len(COUNTS)
    for row in rows:
        for i, value in enumerate(row):
            total[i] += value
    return total
