"""The Admin API: consumers, keys and the audit log over HTTP, on a listener of its own.

:mod:`.api` is the Flask app (JSON, the gateway's error shape, bearer tokens
named in ``admin.tokens``); :mod:`.listener` hands it the requests that
arrived on ``admin.listen`` and nothing else (whatever the Host header says);
:mod:`.document` is its own OpenAPI document. Every change goes through
gateway/db/records.py, as the CLI's do.
"""

from .api import create_admin_app
from .listener import AdminListener

__all__ = ["AdminListener", "create_admin_app"]
