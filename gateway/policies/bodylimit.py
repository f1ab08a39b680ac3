"""``max_body_bytes``: refuse bodies over the limit with 413 ``body_too_large``.

A declared ``Content-Length`` over the limit is refused before a byte is read.
A chunked body is cut off while streaming: Flask's per-request
``max_content_length`` makes werkzeug's input stream raise 413 as soon as the
limit is passed, which stops the upload to the upstream too.
"""

from __future__ import annotations

from flask import request

from ..errors import GatewayError
from . import Policy


class BodyLimit(Policy):
    step = "body-size"

    def __init__(self, limit: int):
        self.limit = limit

    def before(self):
        length = request.content_length
        if length is not None and length > self.limit:
            raise GatewayError(413, "body_too_large",
                               f"the body is {length} bytes; this route takes at most {self.limit}")
        request.max_content_length = self.limit
        return None
