"""Counting what the reliability suite proved, for the line ``make test`` ends with.

Tests marked ``fault`` (a failure the gateway must survive), ``hostile`` (bad
input it must refuse cleanly) or ``soak`` are counted as they pass; a test
that tries many inputs says how many with the ``reliability`` fixture
(``reliability.tried(n)``), the soak says how many requests it sent and how
many went wrong. After the run, one line:

    reliability: F faults survived, H hostile inputs tried, S soak requests, E errors

E counts every fault or hostile test that failed (the gateway did not survive or
refuse cleanly), and every soak request that went wrong (lost, failed, or a 5xx).
A soak test failing one of its own preconditions (say, a mix that was not what it
meant to send) is a failed test, not a reliability error.
"""

from __future__ import annotations

from collections import Counter

import pytest

counts: Counter[str] = Counter()
MARKERS = ("fault", "hostile", "soak")


class Recorder:
    def __init__(self, item):
        self.item = item

    def tried(self, inputs: int) -> None:
        """This hostile test tried ``inputs`` inputs (default: one)."""
        self.item.stash[TRIED] = self.item.stash.get(TRIED, 0) + inputs

    def soak(self, requests: int, errors: int) -> None:
        counts["soak"] += requests
        counts["errors"] += errors


TRIED = pytest.StashKey[int]()


@pytest.fixture
def reliability(request) -> Recorder:
    return Recorder(request.node)


def pytest_configure(config):
    config.addinivalue_line("markers", "fault: a failure the gateway must survive")
    config.addinivalue_line("markers", "hostile: input the gateway must refuse cleanly")
    config.addinivalue_line("markers", "soak: mixed traffic over time")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    kind = next((m for m in MARKERS if item.get_closest_marker(m)), None)
    if kind is None:
        return report
    counts["marked"] += call.when == "setup"
    if report.failed and kind != "soak":  # the soak counts its own requests' errors
        counts["errors"] += 1
    elif call.when == "call" and report.passed:
        if kind == "fault":
            counts["faults"] += 1
        elif kind == "hostile":
            counts["hostile"] += item.stash.get(TRIED, 1)
    return report


def pytest_unconfigure(config):
    if counts["marked"]:
        print(f"reliability: {counts['faults']} faults survived, {counts['hostile']} hostile "
              f"inputs tried, {counts['soak']} soak requests, {counts['errors']} errors")
