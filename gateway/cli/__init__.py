"""The ``gateway`` command (installed as a console script by setup.cfg).

:mod:`.commands` runs and checks a gateway (``check``, ``schema``,
``hash-key``, ``openapi``, ``serve``); :mod:`.nginx` writes nginx's side of
offloaded services (``nginx``); :mod:`.records` manages the consumers
and keys of its database (``db``, ``consumers``, ``keys``, ``export``,
``import``, ``admin``).
"""

from . import nginx, records  # noqa: F401  (register their commands on main)
from .commands import main, route_chains, schema_document

__all__ = ["main", "route_chains", "schema_document"]
