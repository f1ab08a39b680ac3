"""Per-route policies, chained once at start-up (lura-style).

Every route (a service blueprint or a hand-written one) gets a tuple of
:class:`Policy` objects built from its config; a policy that is switched off
is simply not in the tuple, so it costs nothing. Two app-level hooks run the
chains, one on each side of Flask-Limiter's quota check:

    request id -> path check -> [cors, ip rules, body size, api key / token] -> quota -> [cache] -> view

``after`` runs for every response of the route (errors included), in reverse.
"""

from __future__ import annotations

from flask import Flask, Response, request


class Policy:
    """One step of a route's chain.

    ``before`` may answer the request itself (return a Response) or raise a
    :class:`~gateway.errors.GatewayError`; returning None passes the request on.
    ``after`` sees every response of the route, including ones it did not make.
    """

    def before(self) -> Response | None:
        return None

    def after(self, response: Response) -> Response:
        return response


class Chains:
    """The policies of every route, split around the quota check."""

    def __init__(self):
        self.pre: dict[str, tuple[Policy, ...]] = {}
        self.post: dict[str, tuple[Policy, ...]] = {}
        self.all: dict[str, tuple[Policy, ...]] = {}

    def add(self, route: str, pre: list[Policy], post: list[Policy]) -> None:
        if pre:
            self.pre[route] = tuple(pre)
        if post:
            self.post[route] = tuple(post)
        if pre or post:
            self.all[route] = tuple(reversed(pre + post))

    def install_pre(self, app: Flask) -> None:
        """Register the hook for the steps that come before the quota check."""
        if self.pre:
            app.before_request(_runner(self.pre))
        if self.all:
            routes = self.all

            @app.after_request
            def run_policy_afters(response: Response) -> Response:
                for policy in routes.get(request.blueprint or "", ()):
                    response = policy.after(response)
                return response

    def install_post(self, app: Flask) -> None:
        """Register the hook for the steps that come after the quota check."""
        if self.post:
            app.before_request(_runner(self.post))


def _runner(chains: dict[str, tuple[Policy, ...]]):
    def run_policies() -> Response | None:
        for policy in chains.get(request.blueprint or "", ()):
            answer = policy.before()
            if answer is not None:
                return answer
        return None
    return run_policies
