"""Documents compiled for validation: paths found, strings cast, 3.0 schemas made JSON Schema."""

from __future__ import annotations

import pytest

from gateway.validation.checks import cast
from gateway.validation.document import json_schema, schema_problems
from gateway.validation.operations import compile_document


def document(paths: dict, schemas: dict | None = None, version: str = "3.0.3") -> dict:
    return {"openapi": version, "info": {"title": "t", "version": "1"}, "paths": paths,
            "components": {"schemas": schemas or {}}}


ANSWER = {"responses": {"200": {"description": "ok"}}}


def test_a_concrete_path_wins_over_a_template_that_matches_it():
    operations = compile_document(document({
        "/items/{id}": {"get": {**ANSWER, "operationId": "one"}},
        "/items/mine": {"get": {**ANSWER, "operationId": "mine"}}}))
    assert operations.find("GET", "/items/mine")[0].name == "mine"
    assert operations.find("GET", "/items/7")[0].name == "one"
    assert operations.find("POST", "/items/7")[:1] == (None,)
    assert operations.find("POST", "/items/7")[2] == ["GET"]
    assert operations.find("GET", "/other") == (None, {}, [])


@pytest.mark.parametrize("text, kind, value", [
    ("12", "integer", 12), ("-3", "integer", -3), (" 5", "integer", " 5"),
    ("5_000", "integer", "5_000"), ("1.5", "number", 1.5), ("2", "number", 2),
    ("1e3", "number", 1000.0), ("true", "boolean", True), ("yes", "boolean", "yes"),
    ("abc", "string", "abc"),
])
def test_strings_are_cast_as_json_writes_values(text, kind, value):
    assert cast(text, kind) == value


def test_nullable_becomes_a_null_type_in_30_only():
    schema = {"type": "object", "properties": {"note": {"type": "string", "nullable": True}}}
    assert json_schema(schema, "3.0")["properties"]["note"]["type"] == ["string", "null"]
    assert json_schema(schema, "3.1") is schema


def test_an_invalid_schema_is_named_by_the_pointer_of_its_keyword():
    broken = document({"/a/{id}": {"get": {**ANSWER, "parameters": [
        {"name": "id", "in": "path", "required": True, "schema": {"type": "integer",
                                                                  "minimum": "one"}}]}}},
        {"Item": {"type": "object", "properties": {"tags": {"type": "array",
                                                            "items": {"type": "strng"}}}}})
    problems = schema_problems(broken)
    assert any(p.startswith("/components/schemas/Item/properties/tags/items/type: ")
               for p in problems), problems
    assert any(p.startswith("/paths/~1a~1{id}/get/parameters/0/schema/minimum: ")
               for p in problems), problems
    assert schema_problems(document({}, version="2.0")) != []
