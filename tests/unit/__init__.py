"""The unit layer: logic without I/O, on injected clocks, in seconds."""


class Clock:
    """Seconds now, moved by hand (``clock.now += 30``): what every timer here takes."""

    def __init__(self, now: float = 1_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now
