"""``services.<name>.validate``: requests checked against the service's OpenAPI document.

``validate: true`` is ``{requests: enforce}``; absent (or false), nothing is
checked. The document is the service's ``openapi`` (fetched from its
upstream) or ``openapi_file`` (a local YAML or JSON file); one of them is
required, which :func:`~gateway.config.checks.cross_check` says.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from .types import Section, switched_on


class ValidateConfig(Section):
    """``validate: {requests, responses, status, unknown_operations, max_errors}``."""

    requests: Literal["enforce", "report", "off"] = Field(
        "enforce", description="enforce: a request that breaks its operation's contract is "
        "refused before it reaches the service; report: it passes, each problem is counted "
        "and logged; off: requests are not checked")
    responses: Literal["report", "off"] = Field(
        "off", description="report: JSON answers (up to 1 MiB) are checked against the "
        "documented schema after they reached the client, unchanged; mismatches are counted "
        "and logged")
    status: Literal[400, 422] = Field(400, description="the status of a refused request")
    unknown_operations: Literal["pass", "refuse"] = Field(
        "pass", description="refuse: a path the document does not describe is 404 "
        "unknown_operation, a described path with another method 405; pass: they go upstream "
        "unchecked")
    max_errors: int = Field(20, ge=1, le=1000, description="problems listed in one refusal at "
                            "most")
    on_missing_document: Literal["refuse", "pass"] = Field(
        "refuse", description="while the service's openapi document cannot be fetched (no "
        "answer, not 200, not an OpenAPI document; it is fetched again with backoff from 1 s "
        "to 30 s): refuse answers every request 503 validation_unavailable with Retry-After; "
        "pass lets requests through unvalidated")

    @model_validator(mode="wrap")
    @classmethod
    def _switch(cls, value: Any, handler):
        return handler(switched_on(value, ValidateConfig, "requests, responses, status, "
                                   "unknown_operations, max_errors, on_missing_document"))

    def describe(self) -> str:
        parts = [f"requests {self.requests}"] if self.requests != "off" else []
        if self.responses != "off":
            parts.append(f"responses {self.responses}")
        return "validate " + ", ".join(parts or ["off"])
