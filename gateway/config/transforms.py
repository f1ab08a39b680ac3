"""``transform:``: how a service's requests and answers are reshaped on the way through.

Headers and query parameters are edited by name (``remove``, then
``rename``, then ``add``, Kong's order); a JSON body is rewritten by one
JMESPath expression, compiled while the config is validated so a typo is a
config error with its key path. The work itself is gateway/compose/transform.py.
"""

from __future__ import annotations

import functools
import re
from typing import Annotated

import jmespath
from jmespath.exceptions import JMESPathError
from jmespath.parser import ParsedResult
from pydantic import AfterValidator, Field, WithJsonSchema

from .types import Section, fail

#: RFC 9110 token characters: what a header name may be made of.
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
#: Answers larger than this are passed through untouched, not buffered.
DEFAULT_TRANSFORM_MAX_BYTES = 1024 * 1024


@functools.cache
def compiled(expression: str) -> ParsedResult:
    """The parsed form of a JMESPath expression (parsed once per process)."""
    return jmespath.compile(expression)


def _jmespath(expression: str) -> str:
    try:
        compiled(expression)
    except JMESPathError as exc:
        reason = str(exc).splitlines()[0]
        raise fail(f"{expression!r} is not a JMESPath expression ({reason}); "
                   "see https://jmespath.org/specification.html") from None
    return expression


def _header_name(name: str) -> str:
    if not _HEADER_NAME.match(name):
        raise fail(f"{name!r} is not a header name (letters, digits and -, e.g. X-Source)")
    return name


def _header_value(value: str) -> str:
    if any(c in value for c in "\r\n\0"):
        raise fail(f"{value!r}: a header value cannot hold CR, LF or NUL")
    return value


def _param_name(name: str) -> str:
    if not name or any(c in name for c in "&=#"):
        raise fail(f"{name!r} is not a query parameter name (no '&', '=' or '#')")
    return name


#: A JMESPath expression, e.g. ``{id: order_id, total: total}``.
JmesPath = Annotated[str, AfterValidator(_jmespath),
                     WithJsonSchema({"type": "string", "description": "a JMESPath expression"})]
HeaderName = Annotated[str, AfterValidator(_header_name)]
HeaderValue = Annotated[str, AfterValidator(_header_value)]
ParamName = Annotated[str, AfterValidator(_param_name)]


class HeaderEdits(Section):
    """``{add: {X-Source: gateway}, remove: [X-Debug], rename: {X-Old: X-New}}``."""

    add: dict[HeaderName, HeaderValue] = Field({}, description="set, replacing any value")
    remove: list[HeaderName] = Field([], description="drop these")
    rename: dict[HeaderName, HeaderName] = Field({}, description="old name: new name; the "
                                                 "values are kept")


class QueryEdits(Section):
    """``{add: {version: "2"}, remove: [debug], rename: {q: search}}``."""

    add: dict[ParamName, str] = Field({}, description="set, replacing any value")
    remove: list[ParamName] = Field([], description="drop these")
    rename: dict[ParamName, ParamName] = Field({}, description="old name: new name; the "
                                               "values are kept")


class RequestTransform(Section):
    headers: HeaderEdits = HeaderEdits()
    query: QueryEdits = QueryEdits()
    body: JmesPath | None = Field(None, description="JMESPath over the JSON request body")


class ResponseTransform(Section):
    headers: HeaderEdits = HeaderEdits()
    body: JmesPath | None = Field(None, description="JMESPath over a JSON answer (2xx only)")
    max_body_bytes: int = Field(DEFAULT_TRANSFORM_MAX_BYTES, ge=0,
                                description="larger answers pass through untouched")


class TransformConfig(Section):
    """``transform: {request: {...}, response: {...}}`` on a service."""

    request: RequestTransform = Field(RequestTransform(), description="edits to the request "
                                      "on its way to the upstream")
    response: ResponseTransform = Field(ResponseTransform(), description="edits to the answer "
                                        "on its way to the client")

    def describe(self) -> str:
        parts = []
        if self.request != RequestTransform():
            parts.append("request")
        if self.response != ResponseTransform():
            parts.append("response")
        return "transform " + "+".join(parts) if parts else ""
