"""``services.<name>.canary``: a share of a service's traffic goes to other targets.

``weight`` percent of consumers (hashed, so each one keeps meeting the same
branch while the weight stands) go to the canary's targets; ``sticky`` says
what is hashed; ``header`` lets a client force a branch (``always``/``never``).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import Field, field_validator

from .types import Section, TargetUrl, fail, kind_of, one_or_many_schema, target_urls

_STICKY = re.compile(r"^(consumer|none|header:[!#$%&'*+.^_`|~0-9A-Za-z-]+|cookie:[^\s;,=]+)$")


class CanaryConfig(Section):
    """``canary: {upstream, weight, sticky, header}``."""

    upstream: Annotated[list[TargetUrl], one_or_many_schema({"type": "string", "format": "uri"})] = \
        Field(description="the canary's base URL, or a list of them (balanced, probed and broken "
                          "like the primary's)")
    weight: float = Field(description="percent of traffic, 0 to 100, in steps of 0.1")
    sticky: str = Field("consumer", description="consumer (API key or token subject, else the "
                        "client address) | header:<Name> | cookie:<name> | none")
    header: str = Field("X-Canary", min_length=1, description="a request header that forces a "
                        "branch: always or never; removed before going upstream")

    @field_validator("upstream", mode="wrap")
    @classmethod
    def _urls(cls, value: Any, handler):
        return target_urls(value, handler)

    @field_validator("weight", mode="before")
    @classmethod
    def _weight(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise fail(f"expected a percentage from 0 to 100, got {kind_of(value)}")
        if not 0 <= value <= 100 or abs(value * 10 - round(value * 10)) > 1e-9:
            raise fail(f"{value} is not a percentage from 0 to 100 in steps of 0.1 (e.g. 5 or 2.5)")
        return float(value)

    @field_validator("sticky")
    @classmethod
    def _sticky(cls, sticky: str) -> str:
        if not _STICKY.match(sticky):
            raise fail(f"{sticky!r} is not consumer, none, header:<Name> or cookie:<name>")
        return sticky

    @property
    def per_mille(self) -> int:
        """The weight in tenths of a percent (0–1000)."""
        return round(self.weight * 10)
