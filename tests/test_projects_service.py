"""The rules project and permission events follow, whether they come from RabbitMQ or HTTP."""

from __future__ import annotations

import pytest

from codeactions_core.errors import InvalidInput
from codeactions_core.model import Role
from codeactions_core.services.projects import role


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, Role.VIEWER),
        ("2", Role.CONTRIBUTOR),
        (3, Role.MODERATOR),
        ("moderator", Role.MODERATOR),
        (" Viewer ", Role.VIEWER),
    ],
)
def test_roles(value, expected):
    assert role(value) is expected


@pytest.mark.parametrize("value", [0, 4, "admin", None, True, 2.5, "1.0"])
def test_bad_roles(value):
    with pytest.raises(InvalidInput, match="role must be 1"):
        role(value)


def test_a_project_event(services):
    event = {
        "uuid": "p-1",
        "name": "One",
        "extra": "ignored",
        "authorizations": [
            {"user_email": "a@x.org", "role": 3},
            {"user_email": "b@x.org", "role": "1"},
        ],
    }
    project = services.projects.apply_project(event)
    assert (project.uuid, project.name) == ("p-1", "One")
    assert {(p.email, p.role) for p in services.projects.permissions("p-1")} == {
        ("a@x.org", Role.MODERATOR),
        ("b@x.org", Role.VIEWER),
    }
    again = services.projects.apply_project(event)
    assert again.id == project.id and len(services.projects.permissions("p-1")) == 2


@pytest.mark.parametrize(
    ("event", "words"),
    [
        ({"name": "x"}, "uuid is required"),
        ({"uuid": "p", "name": "a\x00b"}, "NUL"),
        ({"uuid": "p", "name": "x", "authorizations": {"a": 1}}, "list"),
        (
            {"uuid": "p", "name": "x", "authorizations": [{"user_email": "a@x.org", "role": 9}]},
            "role",
        ),
        ({"uuid": "p", "name": "x", "authorizations": ["a@x.org"]}, "object"),
        (["p"], "JSON object"),
    ],
)
def test_bad_project_events_store_nothing(services, event, words):
    with pytest.raises(InvalidInput, match=words):
        services.projects.apply_project(event)
    assert services.store.projects.get("p") is None


def test_permission_events(services):
    projects = services.projects
    assert (
        projects.apply_permission(
            {"action": "update", "project": "p", "user": "a@x.org", "role": 2}
        ).role
        is Role.CONTRIBUTOR
    )
    assert (
        projects.apply_permission(
            {"action": "create", "project": "p", "user": "a@x.org", "role": 3}
        ).role
        is Role.MODERATOR
    )
    assert (
        projects.apply_permission({"action": "delete", "project": "p", "user": "a@x.org"}) is None
    )
    assert (
        projects.apply_permission({"action": "delete", "project": "p", "user": "a@x.org"}) is None
    )
    assert projects.permissions("p") == []
    with pytest.raises(InvalidInput, match="action"):
        projects.apply_permission({"action": "grant", "project": "p", "user": "a@x.org", "role": 1})
