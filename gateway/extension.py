"""What the gateway keeps for the app's lifetime, and the one way to reach it.

:func:`create_app` stores a :class:`Gateway` in ``app.extensions["gateway"]``
(the Flask extension convention); everything that needs it during a request
(the gateway's own endpoints, ``gateway.api``, hand-written blueprints) asks
:func:`gateway_of`, which is typed, instead of reading the dict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from flask import Flask, current_app
from limits.storage import Storage

from .clock import SYSTEM, Clock
from .compose.aggregate import CallPool
from .config import GatewayConfig
from .keyring import Directory
from .openapi.pending import PendingDocument
from .policies.allowance import Allowances, ServiceCounts
from .telemetry.storagehealth import StorageHealth
from .telemetry.tracing import Tracing
from .tokens import Verifier
from .transport import DEFAULT_POOL_SIZE, Upstream
from .transport.health import HealthChecker
from .usage import UsageRecorder

if TYPE_CHECKING:  # (the app imports it only with a database: SQLAlchemy)
    from .db.follower import Follower

#: The key in ``app.extensions``.
EXTENSION = "gateway"


@dataclass
class Gateway:
    """The app's config, upstreams and shared parts."""

    config: GatewayConfig
    upstreams: dict[str, Upstream]
    #: what every timer of the app reads (gateway/clock.py; a test's moved clock)
    clock: Clock = SYSTEM
    #: the shared ``limits`` storage (None when nothing needs one)
    storage: Storage | None = None
    #: the merged OpenAPI document served at /openapi.json (gateway/openapi)
    openapi: dict = field(default_factory=dict)
    #: OpenTelemetry traces (gateway/telemetry/tracing.py), when ``tracing:`` is set
    tracing: Tracing | None = None
    #: the worker's bounded pool for aggregate calls and ``gateway.api.gather``
    call_pool: CallPool = field(default_factory=lambda: CallPool(DEFAULT_POOL_SIZE))
    #: whether the shared store answers, since when (``/readyz``, the status page)
    storage_health: StorageHealth = field(default_factory=lambda: StorageHealth(None))
    #: the active health checks (transport/health.py), when a service has them
    health_checker: HealthChecker | None = None
    #: each service's canary targets, when it has a canary
    canaries: dict[str, Upstream] = field(default_factory=dict)
    #: the OpenAPI documents validated services missed at start, fetched again
    pending_documents: dict[str, PendingDocument] = field(default_factory=dict)

    #: consumers and keys at runtime: this worker's, and what keeps them current
    directory: Directory = field(default_factory=Directory)
    follower: Follower | None = None
    #: usage per consumer, service and hour (gateway/usage), and the per-period counts
    #: its flushes keep for /_gateway/usage
    usage: UsageRecorder | None = None
    service_counts: ServiceCounts = field(default_factory=ServiceCounts)
    #: the consumers' allowances (gateway/policies/allowance.py), when a route counts them
    quota_allowances: Allowances | None = None
    #: the issuers' token verifier, when issuers are configured
    tokens: Verifier | None = None

    def database_state(self) -> str | None:
        """``ok`` or ``unreachable`` with a ``database:``, else None."""
        return self.follower.state if self.follower is not None else None

    def validation_states(self) -> dict[str, str]:
        """Each validated service: ``ok``, or ``waiting_for_document`` while its document
        is missing (``/readyz``, the status page)."""
        return {name: ("waiting_for_document" if name in self.pending_documents
                       and self.pending_documents[name].waiting else "ok")
                for name, service in self.config.services.items()
                if service.validate_ is not None}


def gateway_of(app: Flask | None = None) -> Gateway:
    """The :class:`Gateway` of ``app`` (default: the app handling the request)."""
    return (app or current_app).extensions[EXTENSION]
