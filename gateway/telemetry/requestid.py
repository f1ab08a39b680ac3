"""``X-Request-ID``: one id per request, kept from the client when well-formed.

The id is made when the request's state is (gateway/state.py), sent upstream,
written in the access log and error bodies, and returned to the client.
"""

from __future__ import annotations

import os
import re

HEADER = "X-Request-ID"
_WELL_FORMED = re.compile(r"[A-Za-z0-9._-]{1,128}")


def incoming_or_new(value: str | None) -> str:
    """The client's id if it is at most 128 of ``[A-Za-z0-9._-]``, else a fresh one."""
    if value and _WELL_FORMED.fullmatch(value):
        return value
    return os.urandom(16).hex()
