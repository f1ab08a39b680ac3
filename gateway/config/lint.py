"""Things a valid config may say that are probably not what the user meant.

``gateway check`` prints these as warnings, and the gunicorn master logs them
at start; none of them stops the gateway.
"""

from __future__ import annotations

import os

from .model import GatewayConfig
from .types import is_redis


def config_warnings(config: GatewayConfig, workers: int | None = None) -> list[str]:
    """Each warning as one sentence that names the key and the fix."""
    warnings = []
    for name, consumer in config.consumers.items():
        if consumer.plain_keys:
            warnings.append(
                f"consumers.{name}.keys: {consumer.plain_keys} key(s) written in plain "
                "text; store the sha256: form instead (`gateway hash-key` prints it)")
    if not config.consumers and config.database is None:
        keyed = [f"services.{name}" for name, s in config.services.items() if s.auth_methods == {"api_key"}]
        keyed += [f"blueprints[{i}]" for i, b in enumerate(config.blueprints)
                  if b.auth_methods == {"api_key"}]
        for where in keyed:
            warnings.append(f"{where}.auth: api_key, but no consumers are configured, so every "
                            "request gets 401; add consumers: {name: {keys: [...]}}")
    for name, service in config.services.items():
        if service.tls is not None and not service.tls.verify:
            warnings.append(f"services.{name}.tls.verify: false: the upstream's certificate is "
                            "not checked, so anyone on the path can pose as it; give its CA in "
                            "tls.ca_file instead")
    if workers is None:
        workers = int(os.environ.get("GATEWAY_WORKERS") or os.cpu_count() or 1)
    if config.keeps_shared_state() and not is_redis(config.storage) and workers > 1:
        warnings.append(
            f"storage is {config.storage} and gunicorn runs {workers} workers: each worker "
            "counts quotas, caches and breaker failures on its own, so a limit of N lets up to "
            f"{workers}×N through. Set storage: redis://host:6379/0 to share them.")
    return warnings
