"""The gateway's gunicorn worker: how many connections it accepts per pass of its loop."""

from __future__ import annotations

from gateway.serve.worker import ACCEPT_BATCH, LoopLag
from gateway.testing import MovedClock


class Timer:
    ref = True

    def start(self, callback) -> None:
        self.callback = callback


class Loop:
    def timer(self, after: float, repeat: float) -> Timer:
        self.made = Timer()
        return self.made


def test_a_quick_loop_accepts_one_per_pass_and_a_slow_one_a_batch():
    clock, loop = MovedClock(100.0), Loop()
    lag = LoopLag(loop, clock)
    assert loop.made.ref is False and loop.made.callback == lag.tick
    assert lag.accept_batch == 1                 # idle: the other workers share a burst
    clock.advance(LoopLag.INTERVAL + 0.001)        # the timer 1 ms late: still quick
    lag.tick()
    assert lag.accept_batch == 1
    clock.advance(LoopLag.INTERVAL + 0.050)        # a pass took 50 ms: next chance is far away
    lag.tick()
    assert lag.accept_batch == ACCEPT_BATCH
    clock.advance(LoopLag.INTERVAL)                # on time again
    lag.tick()
    assert lag.accept_batch == 1
