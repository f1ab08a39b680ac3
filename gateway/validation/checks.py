"""Checking one request (or one answer) against its operation: a list of problems.

Parameters are taken from where they live and deserialized by their OpenAPI
``style`` and ``explode`` (openapi-core's style functions: ``?ids=1,2,3``
and ``?ids=1&ids=2`` as declared), strings are cast to the types the schema
names, then each value is checked by its compiled schema (jsonschema-rs).
Bodies are parsed by media type (JSON, form-encoded); other media types are
only checked to be accepted. No problem ever carries a parameter's value
(path, query, header or cookie: any may be a credential or personal data;
``the value is longer than 4 characters``); body problems may quote what is
wrong, except a ``format: password`` property's value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import jsonschema_rs
from werkzeug.datastructures import MultiDict

from .document import pointer
from .operations import Body, Operation, Parameter, path_values

_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)")
_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")


@dataclass(frozen=True)
class Problem:
    """One way a request (or an answer) breaks its operation's contract."""

    location: str  # path, query, header, cookie, body (or response)
    keyword: str
    message: str
    #: a JSON pointer into the body (body problems)
    pointer: str | None = None
    #: the parameter's name (parameter problems)
    name: str | None = None

    def as_dict(self) -> dict[str, str]:
        shown = {"location": self.location}
        if self.name is not None:
            shown["name"] = self.name
        if self.pointer is not None:
            shown["pointer"] = self.pointer
        shown["keyword"] = self.keyword
        shown["message"] = self.message
        return shown


class UnsupportedMediaType(Exception):
    """A body whose Content-Type the operation does not accept."""

    def __init__(self, given: str, accepted: list[str]):
        super().__init__(given)
        self.given, self.accepted = given, accepted


@dataclass
class Request:
    """What validation reads of a request."""

    method: str
    path_groups: dict[str, str]
    query: MultiDict
    #: werkzeug's Headers (case-insensitive) or any mapping
    headers: Any
    cookies: Mapping[str, str]
    content_type: str | None
    #: None: the request has no body
    body: bytes | None


def check_request(operation: Operation, request: Request, limit: int,
                  body: bool = True) -> list[Problem]:
    """Every problem, up to ``limit``; UnsupportedMediaType for a body of a type not accepted.

    :param body: check the body too (not when a transform reshapes it before the service
        gets it: the document describes what the service gets)."""
    problems: list[Problem] = []
    sources = {"path": path_values(request.path_groups, operation.parameters),
               "query": request.query, "header": request.headers, "cookie": request.cookies}
    for parameter in operation.parameters:
        problems += _check_parameter(parameter, sources[parameter.location])
        if len(problems) >= limit:
            return problems[:limit]
    # (an operation that documents no body has nothing to check one against)
    if operation.body is not None and body:
        problems += _check_body(operation.body, request.content_type, request.body, limit)
    return problems[:limit]


def _check_parameter(parameter: Parameter, source: Any) -> list[Problem]:
    deserialize = parameter.deserialize
    where = parameter.location
    if deserialize is None:
        return []
    try:
        raw = deserialize(parameter.explode, parameter.name, parameter.kind or "string", source)
    except KeyError:
        if parameter.required:
            return [Problem(where, "required", f"the {where} parameter {parameter.name!r} is "
                            "required", name=parameter.name)]
        return []
    except (ValueError, TypeError, IndexError):
        return [Problem(where, "style", f"cannot be read as style {parameter.style!r} "
                        f"(explode: {str(parameter.explode).lower()})", name=parameter.name)]
    value = _cast(raw, parameter)
    return [Problem(where, _keyword(error), _message(error, secret=True),
                    pointer=pointer(error.instance_path) if error.instance_path else None,
                    name=parameter.name)
            for error in parameter.check.iter_errors(value)]


def _cast(value: Any, parameter: Parameter) -> Any:
    if parameter.kind == "array" and isinstance(value, list):
        return [cast(item, parameter.item_kind) for item in value]
    if parameter.kind == "object" and isinstance(value, dict):
        return {k: cast(v, parameter.property_kinds.get(k, "")) for k, v in value.items()}
    return cast(value, parameter.kind)


def cast(value: Any, kind: str) -> Any:
    """A string as the type the schema names; left a string when it is not one (the
    schema then says what is wrong with it)."""
    if not isinstance(value, str):
        return value
    # as JSON writes numbers: Python's int() would also take " 5" and "5_000"
    if kind == "integer" and _INTEGER.fullmatch(value):
        return int(value)
    if kind == "number" and _NUMBER.fullmatch(value):
        return float(value) if any(c in value for c in ".eE") else int(value)
    if kind == "boolean" and value in ("true", "false"):
        return value == "true"
    if kind == "null" and value in ("", "null"):
        return None
    return value


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def accepted_as(body: Body, content_type: str | None) -> str | None:
    """The key of ``body.media`` a Content-Type falls under, None when none accepts it."""
    given = media_type(content_type)
    if given in body.media:
        return given
    family = given.split("/")[0] + "/*"
    if family in body.media:
        return family
    if "*/*" in body.media:
        return "*/*"
    if given.endswith("+json") and "application/json" in body.media:
        return "application/json"
    return None


def _check_body(body: Body, content_type: str | None, data: bytes | None,
                limit: int) -> list[Problem]:
    if data is None and not content_type:
        if body.required:
            return [Problem("body", "required", "the request body is required", pointer="")]
        return []
    key = accepted_as(body, content_type)
    if key is None:
        raise UnsupportedMediaType(media_type(content_type) or "(none)", sorted(body.media))
    check = body.media[key]
    if check is None:
        return []
    given = media_type(content_type)
    if given == "application/x-www-form-urlencoded":
        kinds = body.form_kinds.get(key, {})
        pairs = MultiDict(parse_qsl((data or b"").decode("latin-1"), keep_blank_values=True))
        value: Any = {name: ([cast(v, "") for v in pairs.getlist(name)]
                             if kinds.get(name) == "array" else cast(pairs[name], kinds.get(name, "")))
                      for name in pairs}
    elif given == "application/json" or given.endswith("+json"):
        try:
            value = json.loads(data or b"")
        except ValueError as exc:
            return [Problem("body", "json", f"the body is not valid JSON ({exc})", pointer="")]
    else:
        return []  # a media type validation does not parse: accepted, unchecked
    return body_problems(check, value, "body", limit)


def body_problems(check, value: Any, location: str, limit: int) -> list[Problem]:
    """A JSON value's problems, each with a pointer (the missing or unexpected property's
    own, for ``required`` and ``additionalProperties``)."""
    problems = []
    for error in check.iter_errors(value):
        keyword = _keyword(error)
        path = list(error.instance_path)
        kind = error.kind
        if isinstance(kind, jsonschema_rs.ValidationErrorKind.Required):
            path.append(kind.property)
        elif isinstance(kind, jsonschema_rs.ValidationErrorKind.AdditionalProperties):
            for name in kind.unexpected:
                problems.append(Problem(location, keyword, f"{name!r} is not a property this "
                                        "schema allows", pointer=pointer([*path, name])))
            continue
        problems.append(Problem(location, keyword, error.message, pointer=pointer(path)))
        if len(problems) >= limit:
            break
    return problems[:limit]


def _keyword(error: jsonschema_rs.ValidationError) -> str:
    name = type(error.kind).__name__
    keyword = name[0].lower() + name[1:]
    return {"oneOfNotValid": "oneOf", "oneOfMultipleValid": "oneOf",
            "falseSchema": "false"}.get(keyword, keyword)


def _message(error: jsonschema_rs.ValidationError, secret: bool) -> str:
    """The validator's message, without the value it starts with when ``secret``."""
    if not secret:
        return error.message
    for shown in (json.dumps(error.instance, separators=(",", ":")), json.dumps(error.instance)):
        if error.message.startswith(shown + " "):
            rest = error.message[len(shown):]
            if _quotes(rest, error.instance):
                break
            return "the value" + rest
    return f"the value does not match its schema ({_keyword(error)})"


def _quotes(text: str, value: Any) -> bool:
    """Whether ``text`` still shows ``value`` (or a part of it) somewhere."""
    parts = value if isinstance(value, list) else list(value.values()) \
        if isinstance(value, dict) else [value]
    return any(str(part) in text for part in parts if str(part))
