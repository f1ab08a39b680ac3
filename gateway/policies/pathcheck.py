"""The path check: a service's raw path goes upstream, so one that could climb
out of its prefix (``..``, ``.``, ``//``, ``\\``, NUL) is refused with 400
``bad_path`` first in the chain, before it spends the client's quota or
touches the cache."""

from __future__ import annotations

from flask import request

from ..routing.paths import check_path
from . import Policy


class PathCheck(Policy):
    step = "path-check"

    def before(self):
        check_path(request.environ.get("PATH_INFO", ""))
        return None
