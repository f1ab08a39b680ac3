"""An aggregate call's templates: references filled, encoded, typed, or refused by name."""

from __future__ import annotations

import pytest

from gateway.compose.templates import Unresolved, fill_json, fill_text

ANSWERS = {"user": {"id": 7, "team_id": "a/b", "tags": ["x", "y"], "admin": True, "gone": None}}


@pytest.mark.parametrize("template,encode,expected", [
    ("/users/{user_id}", True, "/users/42"),
    ("/teams/{user.team_id}", True, "/teams/a%2Fb"),     # a / in a value adds no segment
    ("/teams/{user.team_id}", False, "/teams/a/b"),
    ("/tags/{user.tags.1}", True, "/tags/y"),
    ("?admin={user.admin}", False, "?admin=true"),
])
def test_references_are_filled(template, encode, expected):
    assert fill_text(template, {"user_id": "42"}, ANSWERS, encode=encode) == expected


@pytest.mark.parametrize("template,why", [
    ("/x/{user.missing}", "has no missing"),
    ("/x/{user.gone}", "is null"),
    ("/x/{user.tags}", "not a plain value"),
])
def test_a_reference_that_finds_nothing_says_which(template, why):
    with pytest.raises(Unresolved, match=why):
        fill_text(template, {}, ANSWERS, encode=True)


def test_a_dot_segment_cannot_come_from_a_value():
    with pytest.raises(Unresolved, match="cannot be a path segment"):
        fill_text("/x/{p}", {"p": ".."}, {}, encode=True)


def test_a_json_body_keeps_the_values_types():
    body = fill_json({"id": "{user.id}", "label": "user {user.id}", "tags": ["{user.admin}"]},
                     {}, ANSWERS)
    assert body == {"id": 7, "label": "user 7", "tags": [True]}
