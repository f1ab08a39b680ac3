"""Per-route policies, chained once at start-up (lura-style), in one declared order.

Every route (a service, a hand-written blueprint, an aggregate) gets one
:class:`Chain`: the steps its config switches on, in the order a request
meets them (:data:`ORDER`)::

    request id -> path check -> cors -> ip rules -> body size -> authentication
        -> quota -> validate -> canary -> cache -> transform -> upstream

A step that is switched off is not in the chain at all, so it costs nothing.
The request id is made for every request before any chain runs
(gateway/state.py); ``transform`` and ``upstream`` are the route's view (the
proxy, or an aggregate; a hand-written blueprint has its own ``view``).
:func:`steps_for` decides which steps a route has, from its config alone:
``gateway check`` prints it, and :func:`~.build.install` builds exactly that.

One ``before_request`` hook runs the route's chain; the first step that
answers (or raises) ends it. One ``after_request`` hook runs every step's
``after`` in reverse, for every response of the route, errors included.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, Response, request

from ..config import GatewayConfig, RoutePolicies

#: Every step a chain can have, in the order a request meets them.
ORDER = ("request-id", "path-check", "cors", "ip-rules", "body-size", "authentication",
         "quota", "validate", "canary", "cache", "transform", "upstream", "view")


class Policy:
    """One step of a route's chain.

    ``before`` may answer the request itself (return a Response) or raise a
    :class:`~gateway.errors.GatewayError`; returning None passes the request on.
    ``after`` sees every response of the route, including ones it did not make.
    """

    #: the step's name in :data:`ORDER`
    step = ""

    def before(self) -> Response | None:
        return None

    def after(self, response: Response) -> Response:
        return response


@dataclass(frozen=True)
class Chain:
    """One route's policies, in :data:`ORDER`."""

    policies: tuple[Policy, ...]

    def __post_init__(self):
        steps = [p.step for p in self.policies]
        if steps != sorted(steps, key=ORDER.index):
            raise ValueError(f"a chain's steps must follow {ORDER}, got {steps}")

    def before(self) -> Response | None:
        for policy in self.policies:
            answer = policy.before()
            if answer is not None:
                return answer
        return None

    def after(self, response: Response) -> Response:
        for policy in reversed(self.policies):
            response = policy.after(response)
        return response


def install_chains(app: Flask, chains: dict[str, Chain]) -> None:
    """Run each route's chain before its view, and its ``after`` steps on every response."""
    chains = {route: chain for route, chain in chains.items() if chain.policies}
    if not chains:
        return

    @app.before_request
    def run_chain() -> Response | None:
        chain = chains.get(request.blueprint or "")
        return chain.before() if chain is not None else None

    @app.after_request
    def run_chain_afters(response: Response) -> Response:
        chain = chains.get(request.blueprint or "")
        return chain.after(response) if chain is not None else response


def steps_for(kind: str, policies: RoutePolicies, config: GatewayConfig) -> tuple[str, ...]:
    """The steps of a route's chain, from its config alone, in :data:`ORDER`.

    :param kind: ``service``, ``blueprint`` or ``aggregate``.
    """
    steps = ["request-id"]
    if kind == "service":
        # the raw path goes upstream: a malformed one is refused before it costs anything
        steps.append("path-check")
    if policies.cors:
        steps.append("cors")
    if policies.allow_ips or policies.deny_ips:
        steps.append("ip-rules")
    if policies.max_body_bytes is not None:
        steps.append("body-size")
    if policies.auth_methods:
        steps.append("authentication")
    if config.has_quota(policies):
        steps.append("quota")
    if kind == "service" and getattr(policies, "validate_", None) is not None:
        steps.append("validate")
    if kind == "service" and getattr(policies, "canary", None) is not None:
        steps.append("canary")
    if policies.cache:
        steps.append("cache")
    if kind == "service" and getattr(policies, "transform", None) or kind == "aggregate" and any(
            config.services[c.service].transform for c in getattr(policies, "calls", {}).values()):
        steps.append("transform")
    steps.append("view" if kind == "blueprint" else "upstream")
    return tuple(steps)
