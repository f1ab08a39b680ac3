"""Filling an aggregate call's ``path``, ``query`` and ``body`` templates.

``{user_id}`` is a path parameter of the aggregate's route; ``{user.team_id}``
is a field of call ``user``'s answer. In a path the value is percent-encoded
whole (a ``/`` in it cannot add a segment); in a JSON body a string that is
exactly one reference takes the value with its JSON type (``"{user.id}"``
becomes ``7``, not ``"7"``). A reference that finds nothing raises
:class:`Unresolved`: the call fails, and says which field was missing.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from ..config.aggregates import REFERENCE


class Unresolved(Exception):
    """A reference named a field the answer does not have, or not a plain value."""


def lookup(ref: str, params: dict[str, str], answers: dict[str, Any]) -> Any:
    """The value ``ref`` names: a path parameter, or a field of an earlier answer."""
    head, *fields = ref.split(".")
    if head in params:
        value: Any = params[head]
    else:
        value = answers[head]
    for name in fields:
        if isinstance(value, list) and name.isdigit() and int(name) < len(value):
            value = value[int(name)]
        elif isinstance(value, dict) and name in value:
            value = value[name]
        else:
            raise Unresolved(f"{{{ref}}}: the {head} answer has no {'.'.join(fields)}")
    if value is None:
        raise Unresolved(f"{{{ref}}}: the {head} answer's {'.'.join(fields)} is null")
    return value


def as_text(ref: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise Unresolved(f"{{{ref}}} is {type(value).__name__}, not a plain value")


def fill_text(template: str, params: dict[str, str], answers: dict[str, Any],
              encode: bool = False) -> str:
    """A string with every reference replaced (percent-encoded when ``encode``)."""
    def value(match) -> str:
        ref = match.group(1)
        text = as_text(ref, lookup(ref, params, answers))
        if encode:
            if text in ("", ".", ".."):
                raise Unresolved(f"{{{ref}}} is {text!r}, which cannot be a path segment")
            return quote(text, safe="")
        return text
    return REFERENCE.sub(value, template)


def fill_json(template: Any, params: dict[str, str], answers: dict[str, Any]) -> Any:
    """A JSON template with its references replaced, keeping the values' types."""
    if isinstance(template, str):
        whole = REFERENCE.fullmatch(template)
        if whole:
            return lookup(whole.group(1), params, answers)
        return fill_text(template, params, answers)
    if isinstance(template, dict):
        return {fill_text(k, params, answers): fill_json(v, params, answers)
                for k, v in template.items()}
    if isinstance(template, list):
        return [fill_json(v, params, answers) for v in template]
    return template
