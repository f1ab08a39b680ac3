"""Turning validation errors into sentences a person can act on.

pydantic reports each error with its location and a type code; this module
writes the location as the key path of the YAML file (``services.users.
retries``, ``upstream[1]``) and the type as what was expected and what was
found, with a "did you mean" for misspelt keys. Every problem is reported at
once, in one :class:`ConfigError`.
"""

from __future__ import annotations

import difflib
import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from .types import kind_of


class ConfigError(Exception):
    """The configuration is invalid; ``problems`` lists each mistake."""

    def __init__(self, problems: list[str], source: str = "config"):
        self.problems = problems
        self.source = source
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid gateway configuration ({source}):\n{lines}")


def key_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """``('services', 'users', 'upstream', 1)`` -> ``services.users.upstream[1]``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "<top>"


def describe(error: ErrorDetails, root: type[BaseModel]) -> str:
    """One problem as ``key.path: what is wrong``."""
    # an error about a mapping's key is reported at that key, whatever its type
    raw = error["loc"]
    loc = [str(part) if i + 1 < len(raw) and raw[i + 1] == "[key]" else part
           for i, part in enumerate(raw) if part != "[key]"]
    value = error.get("input")
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "extra_forbidden":
        known = sorted(_fields(_annotation_at(root, loc[:-1])))
        hint = difflib.get_close_matches(str(loc[-1]), known, n=1)
        message = (f"unknown key; did you mean {hint[0]!r}?" if hint
                   else f"unknown key; known keys: {', '.join(known)}")
    elif kind == "missing":
        field = _fields(_annotation_at(root, loc[:-1])).get(str(loc[-1]))
        description = field.description if field is not None else None
        message = f"is required: {description}" if description else "is required"
    elif kind in ("int_type", "int_parsing", "int_from_float"):
        message = f"expected a whole number, got {value!r}"
    elif kind in ("float_type", "float_parsing"):
        message = f"expected a number, got {value!r}"
    elif kind == "bool_type":
        message = f"expected true or false, got {value!r}"
    elif kind == "string_type":
        message = f"expected a string, got {kind_of(value)}"
    elif kind in ("list_type", "tuple_type", "set_type", "frozen_set_type"):
        message = f"expected a list, got {kind_of(value)}"
    elif kind in ("dict_type", "model_type", "model_attributes_type"):
        message = f"expected a mapping of settings, got {kind_of(value)}"
    elif kind == "literal_error":
        message = f"{value!r} is not one of {ctx.get('expected', '')}"
    elif kind in ("greater_than_equal", "greater_than"):
        bound = ctx.get("ge", ctx.get("gt"))
        message = f"{value} is out of range (expected {'at least' if 'ge' in ctx else 'more than'} {bound})"
    elif kind in ("less_than_equal", "less_than"):
        bound = ctx.get("le", ctx.get("lt"))
        message = f"{value} is out of range (expected at most {bound})"
    else:
        message = error["msg"]
    return f"{key_path(loc)}: {message}"


def _annotation_at(root: Any, loc: list[Any]) -> Any:
    """The type found at ``loc`` when walking down from ``root``."""
    annotation = root
    for part in loc:
        annotation = _child(annotation, part)
        if annotation is None:
            return None
    return annotation


def _child(annotation: Any, part: Any) -> Any:
    origin = get_origin(annotation)
    if origin is Annotated:
        return _child(get_args(annotation)[0], part)
    if origin in (Union, types.UnionType):
        for arg in get_args(annotation):
            found = _child(arg, part)
            if found is not None:
                return found
        return None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        field = annotation.model_fields.get(str(part))
        return field.annotation if field is not None else None
    if origin is dict:
        return get_args(annotation)[1]
    if origin in (list, tuple, frozenset, set) and isinstance(part, int):
        return get_args(annotation)[0]
    return None


def _fields(annotation: Any) -> dict:
    """The fields of the model inside ``annotation`` (through Optional/Annotated)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _fields(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        for arg in get_args(annotation):
            found = _fields(arg)
            if found:
                return found
        return {}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return dict(annotation.model_fields)
    return {}
