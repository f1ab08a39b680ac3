"""``blueprints:``: hand-written Flask blueprints, each with policies of its own.

``- blueprints.shop:bp`` registers a blueprint with no policies;
``- {blueprint: blueprints.shop:bp, auth: api_key}`` gives it the same
policies a service can have. The import happens while the config is
validated, so a missing module is a config error, not a crashed worker.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, PrivateAttr, model_validator

from .policies import RoutePolicies
from .types import BlueprintRef, _blueprint_ref, fail, kind_of


class BlueprintConfig(RoutePolicies):
    """A hand-written blueprint (``package.module:name``) and its policies."""

    blueprint: BlueprintRef = Field(description="'package.module:name' of a flask.Blueprint")

    #: the imported flask.Blueprint and its URL rules, set once by
    #: gateway/routing/blueprints.py (this package imports no Flask)
    _loaded: Any = PrivateAttr(None)
    _rules: list = PrivateAttr(default_factory=list)

    @model_validator(mode="wrap")
    @classmethod
    def _shorthand(cls, value: Any, handler):
        if isinstance(value, str):
            return handler({"blueprint": _blueprint_ref(value)})
        if not isinstance(value, (dict, BlueprintConfig)):
            raise fail(f"expected 'package.module:name' or a mapping with 'blueprint', "
                       f"got {kind_of(value)}")
        return handler(value)

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema, handler):
        schema = handler(core_schema)
        return {"anyOf": [{"type": "string", "description": "package.module:name"}, schema]}

    @property
    def loaded(self):
        """The flask.Blueprint this entry names."""
        return self._loaded

    @property
    def rules(self) -> list:
        """The werkzeug Rules the blueprint adds, sorted by path."""
        return self._rules
