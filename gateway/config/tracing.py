"""``tracing:``: OpenTelemetry traces, off unless configured.

``tracing: {exporter: otlp, endpoint: http://127.0.0.1:4318}`` posts spans
to ``<endpoint>/v1/traces`` (OTLP over HTTP); ``exporter: console`` prints
them. The work is gateway/telemetry/tracing.py.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from .types import Section, _target_url, fail


class TracingConfig(Section):
    exporter: Literal["otlp", "console"] = Field("otlp", description="otlp (HTTP) or console")
    endpoint: str = Field("http://127.0.0.1:4318", description="the OTLP/HTTP collector's base "
                          "URL; spans go to <endpoint>/v1/traces")
    service_name: str = Field("gateway", min_length=1, description="service.name of the spans")
    sample_ratio: float = Field(1.0, description="the share of new traces recorded, 0 to 1; "
                                "an incoming traceparent's decision is followed")

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, endpoint: str) -> str:
        return _target_url(endpoint)

    @field_validator("sample_ratio", mode="before")
    @classmethod
    def _ratio(cls, ratio):
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 <= ratio <= 1:
            raise fail(f"expected a number from 0 to 1, got {ratio!r}")
        return float(ratio)
