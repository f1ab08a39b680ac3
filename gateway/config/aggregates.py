"""``aggregates:``: endpoints that gather several services' answers into one.

An aggregate is a GET route (Flask rule syntax, ``/dashboard/<user_id>``)
with the policies a service can have, and named ``calls``; each call is one
request to a service, whose ``path``, ``query`` values and JSON ``body`` may
hold ``{user_id}`` (a path parameter) or ``{user.team_id}`` (a field of an
earlier call's answer). The references are checked here, with the calls'
order (:meth:`AggregateConfig.order`): an unknown name or a cycle is a config
error naming its key path. Running them is gateway/compose/aggregate.py.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, PrivateAttr, field_validator, model_validator
from werkzeug.routing import Map, Rule

from .policies import RoutePolicies
from .transforms import JmesPath
from .types import Method, RouteName, Seconds, Section, fail

#: ``{user_id}`` or ``{user.team_id}``: a path parameter or a field of a call's answer.
REFERENCE = re.compile(r"\{([A-Za-z_][\w-]*(?:\.[\w-]+)*)\}")
DEFAULT_MAX_CALL_BYTES = 1024 * 1024
DEFAULT_AGGREGATE_TIMEOUT = 5.0
_CALL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def references(template: Any) -> list[str]:
    """Every ``{name.path}`` inside a template (a string, or JSON holding strings)."""
    if isinstance(template, str):
        return REFERENCE.findall(template)
    if isinstance(template, dict):
        return [r for key, value in template.items() for r in references(key) + references(value)]
    if isinstance(template, list):
        return [r for value in template for r in references(value)]
    return []


class CallConfig(Section):
    """One request of an aggregate: ``{service: users, path: "/users/{user_id}"}``."""

    service: str = Field(description="the service this call goes to (a key of services)")
    path: str = Field(description="the path on the service's upstream, e.g. /users/{user_id}")
    method: Method = Field("GET", description="the call's HTTP method")
    query: dict[str, str] = Field({}, description="query parameters; values are templates "
                                  "such as '{user_id}' or '{user.team_id}'")
    body: Any = Field(None, description="a JSON template sent as the request body")
    select: JmesPath | None = Field(None, description="JMESPath applied to this call's answer")
    default: Any = Field(None, description="what the call's key holds when it fails")
    required: bool = Field(False, description="when this call fails the answer is a 502")

    @field_validator("path")
    @classmethod
    def _path(cls, path: str) -> str:
        if not path.startswith("/"):
            raise fail(f"{path!r} is not a path (expected e.g. /users/{{user_id}})")
        return path

    @property
    def has_default(self) -> bool:
        return "default" in self.model_fields_set

    def references(self) -> list[str]:
        return references(self.path) + references(self.query) + references(self.body)


class AggregateConfig(RoutePolicies):
    """``- path: /dashboard/<user_id>``, its ``calls``, an optional ``shape``."""

    path: str = Field(description="a Flask rule, e.g. /dashboard/<user_id>")
    name: RouteName | None = Field(None, description="the route's name in logs, metrics and "
                                   "consumers' services; default: the path's first segment")
    timeout: Seconds = Field(DEFAULT_AGGREGATE_TIMEOUT, description="seconds for the whole aggregate")
    calls: dict[str, CallConfig] = Field(description="named calls, e.g. "
                                         "{user: {service: users, path: /users/{user_id}}}")
    shape: JmesPath | None = Field(None, description="JMESPath over the merged answers")
    max_call_bytes: int = Field(DEFAULT_MAX_CALL_BYTES, ge=1,
                                description="a call whose answer is larger fails")

    #: the rule's parameters, and the calls in an order that runs sources first
    _parameters: tuple[str, ...] = PrivateAttr(())

    @field_validator("path")
    @classmethod
    def _rule(cls, path: str) -> str:
        if not path.startswith("/"):
            raise fail(f"{path!r} is not a path (expected e.g. /dashboard/<user_id>)")
        try:
            rule = Rule(path, endpoint="aggregate")
            Map([rule])
        except (ValueError, LookupError) as exc:
            raise fail(f"{path!r} is not a Flask rule ({exc}); e.g. /dashboard/<user_id>") from None
        return path

    @field_validator("calls")
    @classmethod
    def _names(cls, calls: dict[str, CallConfig]) -> dict[str, CallConfig]:
        if not calls:
            raise fail("expected at least one call, e.g. {user: {service: users, path: /users/1}}")
        for name in calls:
            if not _CALL_NAME.match(name) or name == "_errors":
                raise fail(f"{name!r}: a call name is letters, digits and '_' (not _errors), "
                           "so references like {name.field} can name it")
        return calls

    @model_validator(mode="after")
    def _check_references(self) -> AggregateConfig:
        rule = Rule(self.path, endpoint="aggregate")
        Map([rule])
        self._parameters = tuple(sorted(rule.arguments))
        problems = []
        for name, call in self.calls.items():
            for ref in call.references():
                head = ref.split(".", 1)[0]
                if head == name:
                    problems.append(f"calls.{name}: {{{ref}}} refers to the call itself")
                elif head not in self.calls and head not in self._parameters:
                    known = ", ".join([*self._parameters, *self.calls]) or "none"
                    problems.append(f"calls.{name}: {{{ref}}} names neither a path parameter "
                                    f"of {self.path} nor a call (known: {known})")
        clash = set(self._parameters) & set(self.calls)
        if clash:
            problems.append(f"calls: {', '.join(sorted(clash))} is both a path parameter and a "
                            "call; rename the call")
        if not problems:
            cycle = _cycle(self.dependencies())
            if cycle:
                problems.append(f"calls: the calls wait for each other in a cycle "
                                f"({' -> '.join(cycle)}); one of them must not refer to the next")
        if problems:
            raise fail("; ".join(problems))
        return self

    @property
    def route_name(self) -> str:
        """``name``, or the first static segment of the path (``dashboard``)."""
        if self.name:
            return self.name
        first = self.path.strip("/").split("/")[0]
        return re.sub(r"[^A-Za-z0-9_-]", "_", first) if first and "<" not in first else "aggregate"

    @property
    def parameters(self) -> tuple[str, ...]:
        return self._parameters

    def dependencies(self) -> dict[str, set[str]]:
        """Each call, and the calls whose answers it needs."""
        return {name: {r.split(".", 1)[0] for r in call.references()} & set(self.calls)
                for name, call in self.calls.items()}

    def describe(self) -> str:
        return ", ".join(p for p in (super().describe(), f"{len(self.calls)} calls") if p)


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One cycle in the graph, as [a, b, a], or [] when there is none."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str]:
        if node in path:
            return path[path.index(node):] + [node]
        if node in done:
            return []
        for nxt in sorted(graph[node]):
            found = visit(nxt, path + [node])
            if found:
                return found
        done.add(node)
        return []

    for start in sorted(graph):
        found = visit(start, [])
        if found:
            return found
    return []
