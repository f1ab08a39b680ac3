"""``services.<name>.health_check``: active probes that take a failing target out of rotation.

Absent, a target leaves the rotation only through the circuit breaker (after
clients' requests failed on it), as before.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, field_validator

from .types import Section, fail


def _at_least_a_second(seconds: float) -> float:
    if seconds < 1:
        raise fail(f"{seconds:g} is below 1 second: probes that often would load the targets "
                   "more than the clients do")
    return seconds


class HealthCheckConfig(Section):
    """``health_check: {path, interval, timeout, healthy_threshold, unhealthy_threshold,
    expect_status}``."""

    path: str = Field("/healthz", description="the path probed on each target (GET)")
    interval: Annotated[float, AfterValidator(_at_least_a_second)] = Field(
        5.0, description="seconds between probes of a target, at least 1")
    timeout: Annotated[float, AfterValidator(_at_least_a_second)] = Field(
        1.0, description="seconds a probe may take, at least 1")
    healthy_threshold: int = Field(2, ge=1, description="successes in a row to come back")
    unhealthy_threshold: int = Field(2, ge=1, description="failures in a row to leave the "
                                     "rotation")
    expect_status: list[int] | None = Field(None, description="statuses that mean healthy; "
                                            "default: any 2xx")

    @field_validator("path")
    @classmethod
    def _path(cls, path: str) -> str:
        if not path.startswith("/"):
            raise fail(f"{path!r} is not a path (expected e.g. /healthz)")
        return path

    def healthy_status(self, status: int) -> bool:
        if self.expect_status is None:
            return 200 <= status < 300
        return status in self.expect_status
