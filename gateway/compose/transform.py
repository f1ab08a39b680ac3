"""A service's ``transform:`` applied: headers and query edited by name, JSON bodies by JMESPath.

One :class:`Transformer` per service with a ``transform`` section, built at
start-up. The proxy (gateway/routing/proxy.py) and the aggregates
(:mod:`.aggregate`) call it, so a service's requests are reshaped the same
way whichever route sends them.

Request bodies must be JSON the expression can use: anything else is a 400
``invalid_body`` and nothing goes upstream. Answers are reshaped only when
they are 2xx JSON within ``max_body_bytes`` and not content-encoded;
anything else passes through untouched, with a log line saying why.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, unquote_plus

from jmespath.exceptions import JMESPathError

from ..config.transforms import HeaderEdits, QueryEdits, TransformConfig, compiled
from ..errors import GatewayError

log = logging.getLogger("gateway.transform")

#: What a JMESPath search or a JSON decode may raise on hostile input.
JSON_FAILURES = (ValueError, TypeError, RecursionError, JMESPathError)


def search(expression: str, data: Any) -> Any:
    """Apply a (validated) JMESPath expression."""
    return compiled(expression).search(data)


def edit_headers(headers: Iterable[tuple[str, str]], edits: HeaderEdits) -> list[tuple[str, str]]:
    """Remove, then rename, then add (replacing) headers; names match in any case."""
    removed = {name.lower() for name in edits.remove}
    renamed = {old.lower(): new for old, new in edits.rename.items()}
    added = {name.lower() for name in edits.add}
    result = []
    for name, value in headers:
        lower = name.lower()
        if lower in removed:
            continue
        name = renamed.get(lower, name)
        if name.lower() in added:
            continue
        result.append((name, value))
    result.extend(edits.add.items())
    return result


def edit_query(query: str, edits: QueryEdits) -> str:
    """The same edits on a raw query string; untouched parameters keep their bytes."""
    result = []
    for pair in query.split("&") if query else ():
        raw_name, equals, value = pair.partition("=")
        name = unquote_plus(raw_name)
        if name in edits.remove:
            continue
        if name in edits.rename:
            name = edits.rename[name]
            pair = quote(name, safe="") + equals + value
        if name in edits.add:
            continue
        result.append(pair)
    result.extend(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in edits.add.items())
    return "&".join(result)


def is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


class Transformer:
    """What one service's ``transform`` section does, ready to apply."""

    def __init__(self, service: str, config: TransformConfig):
        self.service = service
        self.request = config.request
        self.response = config.response
        self.edits_request_headers = config.request.headers != HeaderEdits()
        self.edits_query = config.request.query != QueryEdits()
        self.edits_response_headers = config.response.headers != HeaderEdits()

    @property
    def reshapes_answers(self) -> bool:
        """Whether answers are buffered and rewritten (the upstream is then asked for identity)."""
        return self.response.body is not None

    def outgoing(self, headers: dict[str, str], query: str, body: Any) -> tuple[dict[str, str], str, Any]:
        """The request as the service gets it, for the proxy and an aggregate's calls alike:
        headers and query edited; a body (then whole, as bytes) reshaped when the transform
        has ``request.body``, with its own Content-Type and Content-Length; and the answer
        asked for uncompressed when it will be reshaped.

        :raises GatewayError: 400 ``invalid_body`` (see :meth:`request_body`).
        """
        headers = self.request_headers(headers)
        if self.reshapes_answers:
            headers["Accept-Encoding"] = "identity"  # a reshaped answer must be plain JSON
        query = self.request_query(query)
        if body is not None and self.request.body is not None:
            body = self.request_body(body)
            headers = {k: v for k, v in headers.items()
                       if k.lower() not in ("content-length", "content-type")}
            headers["Content-Type"] = "application/json"
            headers["Content-Length"] = str(len(body))
        return headers, query, body

    def request_headers(self, headers: dict[str, str]) -> dict[str, str]:
        if not self.edits_request_headers:
            return headers
        return dict(edit_headers(headers.items(), self.request.headers))

    def request_query(self, query: str) -> str:
        return edit_query(query, self.request.query) if self.edits_query else query

    def request_body(self, data: bytes) -> bytes:
        """The reshaped JSON body.

        :raises GatewayError: 400 ``invalid_body`` when the body is not JSON or
            not what the expression needs (it finds nothing, or fails).
        """
        expression = self.request.body
        assert expression is not None
        try:
            document = json.loads(data)
        except JSON_FAILURES as exc:
            raise GatewayError(400, "invalid_body", f"the request body is not JSON ({_reason(exc)}); "
                               "this route reshapes a JSON body, send one with "
                               "Content-Type: application/json") from None
        try:
            result = search(expression, document)
        except JSON_FAILURES as exc:
            raise GatewayError(400, "invalid_body", f"the request body does not fit this route's "
                               f"transform {expression!r} ({_reason(exc)})") from None
        if _found_nothing(result):
            raise GatewayError(400, "invalid_body", f"the request body has none of the fields this "
                               f"route's transform {expression!r} reads")
        return json.dumps(result, separators=(",", ":")).encode()

    def response_headers(self, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
        if not self.edits_response_headers:
            return headers
        return edit_headers(headers, self.response.headers)

    def wants_answer(self, status: int, headers) -> bool:
        """Whether an answer with this status and these headers is reshaped."""
        if not (200 <= status < 300) or status == 204:
            return False
        if not is_json(headers.get("content-type")):
            log.info("%s: answer passed through untouched: %s is not JSON", self.service,
                     headers.get("content-type") or "no Content-Type")
            return False
        encoding = headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            log.warning("%s: answer passed through untouched: it is %s-encoded although the "
                        "gateway asked for identity", self.service, encoding)
            return False
        return True

    def response_body(self, data: bytes) -> bytes | None:
        """The reshaped answer, or None to pass it through untouched (logged)."""
        expression = self.response.body
        assert expression is not None
        try:
            result = search(expression, json.loads(data))
        except JSON_FAILURES as exc:
            log.warning("%s: answer passed through untouched: transform %r failed on it (%s)",
                        self.service, expression, _reason(exc))
            return None
        return json.dumps(result, separators=(",", ":")).encode()


def _found_nothing(result: Any) -> bool:
    """Whether the expression matched no field at all (``{a: x}`` on a list gives ``{a: null}``)."""
    if isinstance(result, dict):
        return bool(result) and all(_found_nothing(v) for v in result.values())
    return result is None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
