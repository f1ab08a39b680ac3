"""Offload: nginx carries an offloaded service's bytes; the gateway's chain decides.

For each request to a service with ``offload: true``, nginx asks the gateway first
(``auth_request``) at :data:`~.decisions.DECIDE_PATH`, with the request's method,
URI and length but not its body. :mod:`.decisions` runs the route's own chain on
that request and answers nginx: allowed, with the headers to send upstream and to
the client; or the gateway's whole answer (a refusal, a CORS preflight), which
nginx replays through :data:`~.decisions.ANSWER_PATH` so its status, headers and
JSON body reach the client as they would without offload. ``gateway nginx``
(:mod:`.nginx`) writes the nginx side from gateway.yaml.
"""

from .decisions import ANSWER_PATH, DECIDE_PATH, OffloadDecisions

__all__ = ["ANSWER_PATH", "DECIDE_PATH", "OffloadDecisions"]
