"""Placeholders in step configs: every form, and errors that name the placeholder."""

from __future__ import annotations

import pytest

from codeactions_core.flows.placeholders import (
    PlaceholderError,
    make_scope,
    problems,
    references,
    resolve,
    to_text,
)
from codeactions_core.flows.steps import StepFailed

SCOPE = make_scope(
    "42",
    {"name": "Ana", "delay": 5, "profile": {"tags": ["a", "b"], "vip": True}, "nothing": None},
    {"fetch": {"items": [{"id": 7, "ok": True}], "total": 1.5}, "plain": "text"},
)


def test_a_placeholder_error_fails_the_step_with_its_message():
    with pytest.raises(StepFailed) as raised:
        resolve("{{variables.ghost}}", SCOPE)
    assert (
        raised.value.message == "unknown placeholder {{variables.ghost}}: variables has no 'ghost'"
    )


def test_scope_has_the_engine_shape():
    assert SCOPE["steps"]["plain"] == {"result": "text"}
    assert SCOPE["leadId"] == "42"


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{leadId}}", "42"),
        ("{{ leadId }}", "42"),
        ("{{variables.delay}}", 5),
        ("{{variables.profile}}", {"tags": ["a", "b"], "vip": True}),
        ("{{variables.profile.tags.1}}", "b"),
        ("{{variables.nothing}}", None),
        ("{{steps.fetch.result}}", {"items": [{"id": 7, "ok": True}], "total": 1.5}),
        ("{{steps.fetch.result.items.0.id}}", 7),
        ("{{ steps.fetch.result.items.0.ok }}", True),
        ("{{steps.plain.result}}", "text"),
    ],
)
def test_a_whole_placeholder_keeps_the_raw_value(template, expected):
    assert resolve(template, SCOPE) == expected


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("lead {{leadId}}!", "lead 42!"),
        ("{{variables.name}}/{{ leadId }}", "Ana/42"),
        ("wait {{variables.delay}}s, total {{steps.fetch.result.total}}", "wait 5s, total 1.5"),
        ("tags={{variables.profile.tags}}", 'tags=["a","b"]'),
        ("p={{variables.profile}}", 'p={"tags":["a","b"],"vip":true}'),
        ("[{{variables.nothing}}]", "[]"),
        ("vip={{variables.profile.vip}}", "vip=true"),
        (" {{leadId}}", " 42"),
        ("no placeholders {here}", "no placeholders {here}"),
        ("{{ unclosed", "{{ unclosed"),
    ],
)
def test_placeholders_inside_text_are_interpolated(template, expected):
    assert resolve(template, SCOPE) == expected


def test_resolves_recursively_without_changing_the_input():
    config = {
        "url": "https://api.example.com/leads/{{leadId}}",
        "body": {
            "ids": ["{{steps.fetch.result.items.0.id}}", 3],
            "who": {"n": "{{variables.name}}"},
        },
        "timeout": 10,
        "flag": None,
    }
    resolved = resolve(config, SCOPE)
    assert resolved == {
        "url": "https://api.example.com/leads/42",
        "body": {"ids": [7, 3], "who": {"n": "Ana"}},
        "timeout": 10,
        "flag": None,
    }
    assert config["body"]["ids"][0] == "{{steps.fetch.result.items.0.id}}"


@pytest.mark.parametrize(
    ("template", "named", "reason"),
    [
        ("{{foo}}", "{{foo}}", "must start with one of leadId, variables, steps"),
        ("x {{variables.missing}}", "{{variables.missing}}", "variables has no 'missing'"),
        (
            "{{steps.later.result}}",
            "{{steps.later.result}}",
            "no earlier step 'later' has a result",
        ),
        ("{{steps.fetch.result.items.3.id}}", "{{steps.fetch.result.items.3.id}}", "no item '3'"),
        (
            "{{steps.fetch.result.items.first}}",
            "{{steps.fetch.result.items.first}}",
            "no item 'first'",
        ),
        ("{{variables.name.first}}", "{{variables.name.first}}", "variables.name is a str"),
        ("{{variables.nothing.x}}", "{{variables.nothing.x}}", "variables.nothing is null"),
        ("{{variables..name}}", "{{variables..name}}", "expected a dotted path"),
        ("{{ }}", "{{}}", "expected a dotted path"),
    ],
)
def test_an_unknown_placeholder_is_an_error_naming_it(template, named, reason):
    with pytest.raises(PlaceholderError) as raised:
        resolve({"deep": [template]}, SCOPE)
    assert named in raised.value.message
    assert reason in raised.value.message


def test_references_are_the_step_ids_read():
    config = {
        "a": "{{steps.fetch.result.items.0.id}}",
        "b": ["x {{ steps.other.result }} y", {"c": "{{variables.steps}}"}],
        "d": "{{leadId}}",
    }
    assert references(config) == {"fetch", "other"}
    assert references({"n": 1, "s": "plain"}) == set()


def test_problems_are_placeholders_that_can_never_resolve():
    config = {
        "ok": "{{leadId}} {{variables.anything.0}} {{steps.a.result.x}}",
        "bad": ["{{lead}}", "{{steps.a}}", "{{steps.a.output}}", "{{leadId.x}}"],
    }
    found = problems(config)
    assert len(found) == 4
    assert "{{lead}}" in found[0] and "must start with one of" in found[0]
    assert all("steps.<step id>.result" in found[index] for index in (1, 2))
    assert "leadId has no fields" in found[3]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        ("s", "s"),
        (True, "true"),
        (False, "false"),
        (3, "3"),
        (2.5, "2.5"),
        ({"a": [1, "é"]}, '{"a":[1,"é"]}'),
    ],
)
def test_to_text(value, text):
    assert to_text(value) == text
