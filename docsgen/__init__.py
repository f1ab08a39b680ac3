"""The documentation site's generated pages (mkdocs-gen-files runs docs/gen_pages.py).

Each module here writes one reference page from the code itself, so the
site cannot drift from what the gateway does: the configuration from the
JSON Schema of the config model, the metrics from prometheus_client's
registry, the error codes from the ``GatewayError`` raises in ``gateway/``,
the headers from the routing module's sets, the request chain from
:data:`gateway.policies.ORDER`. A module raises :class:`Undocumented` when the
code has something its page would have to leave out (an error code with no
advice, a header with no entry): ``mkdocs build --strict`` fails on it.
"""

from __future__ import annotations


class Undocumented(Exception):
    """The code has something the reference has no words for yet."""
