"""Usage counts in a worker: rows by consumer, service and hour, the histogram's buckets,
percentiles read from them, and outboxes that keep what their destination refused."""

from __future__ import annotations

import pytest

from gateway.testing import MovedClock
from gateway.usage import COUNTS, LATENCY_BOUNDS, Outbox, Tally, UsageRecorder, percentile

pytestmark = pytest.mark.unit
HOUR = 1_796_454_000  # 2026-12-05T10:00:00Z


def column(row, name):
    return row[COUNTS.index(name)]


def test_a_row_adds_up_classes_bytes_and_the_latency_bucket():
    tally = Tally()
    for status, ms in ((200, 3.0), (201, 5.0), (304, 7.0), (404, 80.0), (429, 0.5),
                       (503, 12_000.0)):
        tally.count("acme", "orders", HOUR + 59, status, 10, 100, ms)
    tally.count("acme", "orders", HOUR + 3600, 200, 0, 0, 1.0)  # the next hour: a row apart
    (key, row), _ = tally.rows.items()
    assert key == ("acme", "orders", HOUR)
    assert column(row, "requests") == 6
    assert [column(row, f"status_{c}") for c in ("2xx", "3xx", "4xx", "5xx", "429")] == \
        [2, 1, 2, 1, 1]  # a 429 is a 4xx too
    assert (column(row, "bytes_in"), column(row, "bytes_out")) == (60, 600)
    # 5 ms is in the "up to 5" bucket; 12 s above the last bound
    assert (column(row, "latency_le_5"), column(row, "latency_le_10"),
            column(row, "latency_le_100"), column(row, "latency_over")) == (3, 1, 1, 1)


def test_percentiles_read_as_their_buckets_upper_bound():
    buckets = [0] * (len(LATENCY_BOUNDS) + 1)
    assert percentile(buckets, 0.5) is None
    buckets[LATENCY_BOUNDS.index(25)] = 90
    buckets[LATENCY_BOUNDS.index(1000)] = 10
    assert percentile(buckets, 0.5) == 25
    assert percentile(buckets, 0.95) == 1000
    buckets[-1] = 1000
    assert percentile(buckets, 0.95) == 10000  # above 10 s reads as 10000


def test_an_outbox_keeps_what_was_refused_and_drops_the_oldest_beyond_its_bound():
    written, dropped, down = [], [], [True]

    def write(rows):
        if down[0]:
            raise ConnectionError("connection refused")
        written.append(dict(rows))

    outbox = Outbox("the database", write, on_dropped=dropped.append, bound=2)
    recorder = UsageRecorder([outbox], clock=MovedClock(HOUR))
    for hour in range(3):  # three hours while the database is down: three rows
        recorder.clock.advance(HOUR + hour * 3600 - recorder.clock.time())
        recorder.record({"service": "orders", "consumer": None, "status": 200,
                         "bytes_received": 0, "bytes_sent": 5, "duration_ms": 1.0})
        recorder.record({"service": None, "status": 404})  # no service: not counted
        recorder.flush()
    assert written == [] and dropped == [1]  # the oldest hour's one request
    down[0] = False
    recorder.flush()
    (rows,) = written
    assert sorted(rows) == [("anonymous", "orders", HOUR + 3600),
                            ("anonymous", "orders", HOUR + 7200)]
    recorder.flush()
    assert len(written) == 1  # nothing left to write
