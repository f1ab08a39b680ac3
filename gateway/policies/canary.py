"""``canary``: which branch of a service (primary or canary) a request goes to.

Decided after the quota and before the cache, so that the cache keeps each
branch's answers apart and the view sends the request to that branch's
targets. A client's ``header`` (default ``X-Canary``) of ``always`` or
``never`` forces the branch; otherwise ``sticky`` says what is hashed into one
of 1000 buckets, of which ``weight × 10`` are the canary's: the consumer (API
key or token subject, else the client address), a header's or a cookie's
value (the consumer when it is absent), or nothing (``none``: drawn anew for
each request). The hash is the same on every worker and host, so one consumer
keeps meeting one branch while the weight stands.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable

from flask import request

from .. import state as request_state
from ..config.canary import CanaryConfig
from . import Policy

BRANCHES = ("primary", "canary")


def bucket(service: str, value: str) -> int:
    """A stable bucket (0–999) for ``value`` on ``service``."""
    digest = hashlib.blake2b(f"{service}\n{value}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % 1000


class CanaryBranch(Policy):
    step = "canary"

    def __init__(self, service: str, config: CanaryConfig,
                 on_branch: Callable[[str], None] | None = None):
        self.service = service
        self.per_mille = config.per_mille
        self.header = config.header
        kind, _, name = config.sticky.partition(":")
        self.sticky_kind, self.sticky_name = kind, name
        self.on_branch = on_branch or (lambda branch: None)

    def before(self):
        state = request_state.current()
        forced = request.headers.get(self.header, "").strip().lower()
        if forced == "always":
            branch = "canary"
        elif forced == "never":
            branch = "primary"
        elif self.sticky_kind == "none":
            branch = "canary" if random.randrange(1000) < self.per_mille else "primary"
        else:
            branch = "canary" if bucket(self.service, self.sticky_value(state)) < self.per_mille \
                else "primary"
        state.branch = branch
        self.on_branch(branch)
        return None

    def sticky_value(self, state) -> str:
        if self.sticky_kind == "header":
            value = request.headers.get(self.sticky_name)
        elif self.sticky_kind == "cookie":
            value = request.cookies.get(self.sticky_name)
        else:
            value = None
        if value:
            return f"{self.sticky_kind}:{value}"
        return state.caller()
