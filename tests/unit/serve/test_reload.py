"""The reload (gateway/serve/reload.py): its log line, and old workers kept until the new are ready."""

from __future__ import annotations

import pytest

from gateway.serve.reload import config_summary

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("output, summary", [
    ("/etc/gateway.yaml: OK, 1 service(s)\n", "1 service"),
    ("gateway.yaml: OK, 2 service(s), 1 aggregate(s)", "2 services, 1 aggregate"),
    ("routes...\ngateway.yaml: OK, 11 service(s), 3 aggregate(s)\n", "11 services, 3 aggregates"),
    ("", "valid"),
])
def test_counts_read_as_words(output, summary):
    assert config_summary(output) == summary


# -- the reload's wait for new workers (gateway/serve/reload.py) ---------------------------

class FakeWorker:
    def __init__(self, age):
        self.age = age


class FakeArbiter:
    """What gunicorn's Arbiter offers the reload: its workers, their count, reaping."""

    def __init__(self, ages: dict[int, int], num_workers: int):
        self.WORKERS = {pid: FakeWorker(age) for pid, age in ages.items()}
        self.num_workers = num_workers
        self.killed: list[int] = []
        self.reaped = 0
        self.log = self

    def warning(self, *args):
        self.warned = args

    def reap_workers(self):
        self.reaped += 1

    def manage_workers(self):
        for pid, _ in sorted(self.WORKERS.items(), key=lambda w: w[1].age)[:-self.num_workers]:
            self.killed.append(pid)
            del self.WORKERS[pid]


def test_old_workers_are_stopped_once_every_new_one_is_ready(tmp_path):
    from gateway.serve.reload import keep_old_workers_until_ready, mark_ready, ready_file

    arbiter = FakeArbiter({10: 1, 11: 2, 20: 3, 21: 4}, num_workers=2)  # 20, 21 are new
    mark_ready(ready_file(str(tmp_path), 20))
    waits = []

    def sleep(seconds):
        waits.append(seconds)
        if len(waits) == 3:  # the second new worker gets ready while the master waits
            mark_ready(ready_file(str(tmp_path), 21))
    keep_old_workers_until_ready(arbiter, str(tmp_path), clock=lambda: 0.0, sleep=sleep)
    arbiter.manage_workers()
    assert arbiter.killed == [10, 11] and len(waits) == 3 and arbiter.reaped == 3


def test_the_old_ones_go_all_the_same_after_the_longest_wait(tmp_path):
    from gateway.serve.reload import READY_WAIT, keep_old_workers_until_ready

    now = [0.0]

    def sleep(seconds):
        now[0] += 10.0
    arbiter = FakeArbiter({10: 1, 20: 2}, num_workers=1)
    keep_old_workers_until_ready(arbiter, str(tmp_path), clock=lambda: now[0], sleep=sleep)
    arbiter.manage_workers()
    assert arbiter.killed == [10] and now[0] >= READY_WAIT and arbiter.warned
