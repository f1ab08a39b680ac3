"""``services.<name>.mirror``: a copy of a share of the requests goes to another upstream.

For trying a new version with real traffic: the copy's answer is read and
thrown away, and nothing about it (slowness, failure) reaches the client.
"""

from __future__ import annotations

from pydantic import Field

from .types import Seconds, Section, TargetUrl


class MirrorConfig(Section):
    """``mirror: {upstream, percent, max_body_bytes, max_in_flight, timeout}``."""

    upstream: TargetUrl = Field(description="where the copies go")
    percent: float = Field(100.0, ge=0, le=100, description="of requests copied")
    max_body_bytes: int = Field(65536, ge=0, description="larger bodies are not mirrored "
                                "(counted as too_large)")
    max_in_flight: int = Field(32, ge=1, description="mirror calls open at once per worker; "
                               "beyond it copies are dropped (counted)")
    timeout: Seconds = Field(2.0, description="seconds to connect and to wait for the answer")
