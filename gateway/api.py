"""The Python API for hand-written blueprints: what configuration cannot say.

Two functions, used inside a view::

    from gateway.api import gather, service

    user = service("users").call("GET", f"/users/{user_id}")        # a requests.Response
    answers = gather(user=lambda: service("users").call("GET", "/users/1"),
                     orders=lambda: service("orders").call("GET", "/orders"))

``service(name)`` is the service's :class:`~gateway.transport.Upstream`: its
``call()`` goes the one way every upstream call goes (pools, failover,
retries, breaker, timeouts, the request id and consumer forwarded, timings on
the access log line) and raises :class:`~gateway.transport.UpstreamError`
(502/503/504 with the gateway's JSON error) when the service cannot answer.
``gather`` runs calls together on the worker's bounded pool, the one the
aggregates use. The blueprint's own policies come from its ``blueprints:``
entry in the config, as a service's do.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import wait
from typing import TypeVar

from .extension import gateway_of
from .transport import Upstream

T = TypeVar("T")


def service(name: str) -> Upstream:
    """The named service's upstream (a key of ``services:`` in the config)."""
    upstreams = gateway_of().upstreams
    if name not in upstreams:
        raise LookupError(f"no service {name!r} in the config (known: {', '.join(upstreams)})")
    return upstreams[name]


def gather(timeout: float | None = None, **calls: Callable[[], T]) -> dict[str, T]:
    """Run each call at once on the worker's bounded pool; their results by name.

    Every call sees the request (its id and consumer go upstream). If calls
    raise, the first one's exception (in argument order) is raised once all
    have finished; ``timeout`` (seconds) raises :class:`TimeoutError` instead.
    """
    pool = gateway_of().call_pool
    futures = {name: pool.submit(call) for name, call in calls.items()}
    _, pending = wait(futures.values(), timeout=timeout)
    if pending:
        raise TimeoutError(f"{len(pending)} of {len(futures)} calls did not finish in {timeout} s")
    return {name: future.result() for name, future in futures.items()}


__all__ = ["gather", "service"]
