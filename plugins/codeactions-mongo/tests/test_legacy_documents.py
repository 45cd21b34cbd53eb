"""Documents shaped exactly as versions of the old Go service wrote them, read through the store.

Each test fills a database the way the old service left it, then migrates it
as `codeactions serve` does on start, then reads.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from bson import ObjectId
from codeactions_mongo import MongoStore

from codeactions_core.model import (
    Authorization,
    CodeChanges,
    CodeRun,
    CodeType,
    LogType,
    Role,
    RunStatus,
)

T0 = datetime(2024, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.fixture
def legacy(new_mock_store) -> MongoStore:
    """A store on a database nothing but the old service has touched yet."""
    return new_mock_store()


def test_codes_of_every_old_shape(legacy: MongoStore) -> None:
    first, typo, latest = ObjectId(), ObjectId(), ObjectId()
    legacy.database["code"].insert_many(
        [
            # the first version: no language, flow codes were "user" codes
            {
                "_id": first,
                "name": "first",
                "type": "user",
                "source": "a",
                "url": "",
                "project_uuid": "p",
                "creted_at": at(0),
                "updated_at": at(0),
            },
            # language, but created_at spelled `creted_at`
            {
                "_id": typo,
                "name": "typo",
                "type": "endpoint",
                "source": "b",
                "language": "python",
                "url": "https://x.org",
                "project_uuid": "p",
                "creted_at": at(1),
                "updated_at": at(2),
            },
            # the last version: timeout, created_at
            {
                "_id": latest,
                "name": "latest",
                "type": "flow",
                "source": "c",
                "language": "javascript",
                "url": "",
                "project_uuid": "p",
                "created_at": at(3),
                "updated_at": at(3),
                "timeout": 30,
            },
        ]
    )
    read = legacy.codes.get(str(typo))  # read before any migration, under the old spelling
    assert (read.type, read.url, read.timeout, read.created_at, read.updated_at) == (
        CodeType.ENDPOINT,
        "https://x.org",
        60,
        at(1),
        at(2),
    )
    assert legacy.migrate() == [1, 2, 3, 4, 11, 13]

    codes = legacy.codes.list_by_project("p")
    assert [c.id for c in codes] == [str(latest), str(typo), str(first)]
    assert (codes[0].language, codes[0].timeout, codes[0].created_at) == ("javascript", 30, at(3))
    assert (codes[2].type, codes[2].language) == (CodeType.FLOW, "python")
    assert [c.name for c in legacy.codes.list_by_project("p", CodeType.FLOW)] == ["latest", "first"]
    assert legacy.codes.update(str(first), CodeChanges(name="renamed")).name == "renamed"
    assert legacy.database["code"].find_one({"_id": first})["name"] == "renamed"


def test_runs_of_every_old_shape(legacy: MongoStore) -> None:
    code = ObjectId()
    with_oid, with_hex, string_id = ObjectId(), ObjectId(), str(ObjectId())
    legacy.database["coderun"].insert_many(
        [
            # code_id an ObjectId, Go's int32 status_code in extra
            {
                "_id": with_oid,
                "code_id": code,
                "status": "completed",
                "result": '{"ok": 1}',
                "extra": {"status_code": 201, "content_type": "json"},
                "params": {"q": "1"},
                "body": "raw",
                "headers": {"Accept": ["*/*"]},
                "created_at": at(1),
                "updated_at": at(1),
            },
            # the last version: code_id a hex string, nil extra, untagged CodeMongoID
            {
                "_id": with_hex,
                "code_id": str(code),
                "codemongoid": "",
                "status": "failed",
                "result": "boom",
                "extra": None,
                "params": None,
                "body": "",
                "headers": None,
                "created_at": at(2),
                "updated_at": at(2),
            },
            # the first version: a hex string as _id, `creted_at`
            {
                "_id": string_id,
                "code_id": str(code),
                "status": "queued",
                "result": "",
                "creted_at": at(0),
                "updated_at": at(0),
            },
        ]
    )
    assert legacy.migrate() == [1, 2, 3, 4, 11, 13]

    runs = legacy.runs.list_by_code(str(code))
    assert [r.id for r in runs] == [str(with_hex), str(with_oid), string_id]
    assert {r.code_id for r in runs} == {str(code)}
    old = legacy.runs.get(str(with_oid))
    assert (old.status, old.extra) == (
        RunStatus.COMPLETED,
        {"status_code": 201, "content_type": "json"},
    )
    assert (old.params, old.headers) == ({"q": "1"}, {"Accept": ["*/*"]})
    assert (runs[0].extra, runs[0].params, runs[0].headers) == ({}, {}, {})
    assert legacy.runs.get(string_id).created_at == at(0)
    assert legacy.runs.list_by_code(str(code), after=old.created_at, before=old.created_at) == [old]

    updated = legacy.runs.update(string_id, status=RunStatus.STARTED)
    assert (updated.status, updated.code_id) == (RunStatus.STARTED, str(code))
    # the first-version run goes, found by the time it had under `creted_at`
    assert legacy.runs.delete_older_than(at(1), 10) == 1
    assert legacy.runs.get(string_id) is None


def test_logs_of_every_old_shape(legacy: MongoStore) -> None:
    code, run = ObjectId(), ObjectId()
    legacy.database["codelog"].insert_many(
        [
            {
                "_id": ObjectId(),
                "run_id": run,
                "code_id": code,
                "type": "debug",
                "content": "one",
                "creted_at": at(0),
                "updated_at": at(0),
            },
            {
                "_id": ObjectId(),
                "run_id": str(run),
                "code_id": str(code),
                "type": "error",
                "content": "two",
                "created_at": at(1),
                "updated_at": at(1),
            },
        ]
    )
    assert legacy.migrate() == [1, 2, 3, 4, 11, 13]

    by_run = legacy.logs.list_by_run(
        CodeRun(id=str(run), code_id=str(code), status=RunStatus.COMPLETED), page=1, per_page=20
    )
    assert (by_run.total, [log.content for log in by_run.items]) == (2, ["one", "two"])
    assert [log.type for log in by_run.items] == [LogType.DEBUG, LogType.ERROR]
    assert {(log.run_id, log.code_id) for log in by_run.items} == {(str(run), str(code))}
    by_code = legacy.logs.list_by_code(str(code), page=2, per_page=1)
    assert (by_code.total, by_code.last_page) == (2, 2)
    assert [log.content for log in by_code.items] == ["one"]
    assert legacy.logs.get(by_run.items[0].id) == by_run.items[0]


def test_projects_of_every_old_shape(legacy: MongoStore) -> None:
    untagged, tagged = ObjectId(), ObjectId()
    legacy.database["project"].insert_many(
        [
            # no bson tags at all: Go's driver lowercased the field names
            {
                "_id": untagged,
                "uuid": "p-old",
                "name": "Old",
                "createdat": at(0),
                "updatedat": at(1),
            },
            # tagged times, nil authorizations (the consumer never filled them)
            {
                "_id": tagged,
                "uuid": "p-new",
                "name": "New",
                "authorizations": None,
                "created_at": at(2),
                "updated_at": at(2),
            },
        ]
    )
    old = legacy.projects.get("p-old")
    assert (old.id, old.name, old.authorizations, old.created_at, old.updated_at) == (
        str(untagged),
        "Old",
        [],
        at(0),
        at(1),
    )
    assert legacy.migrate() == [1, 2, 3, 4, 11, 13]

    legacy.database["project"].update_one(
        {"_id": tagged},
        {
            "$set": {
                "authorizations": [
                    {"useremail": "a@x.org", "role": "3"},  # as the old struct would store them
                    {"user_email": "b@x.org", "role": 2},
                ]
            }
        },
    )
    assert legacy.projects.get("p-new").authorizations == [
        Authorization("a@x.org", Role.MODERATOR),
        Authorization("b@x.org", Role.CONTRIBUTOR),
    ]
    renamed = legacy.projects.upsert("p-old", "Renamed", [])
    assert (renamed.id, renamed.name, renamed.created_at) == (str(untagged), "Renamed", at(0))
    assert legacy.database["project"].count_documents({}) == 2


def test_permissions_and_libraries_of_the_old_service(legacy: MongoStore) -> None:
    permission, lib = ObjectId(), ObjectId()
    legacy.database["user_permissions"].insert_one(
        {
            "_id": permission,
            "project_uuid": "p",
            "email": "a@x.org",
            "role": 3,
            "created_at": at(0),
            "updated_at": at(0),
        }
    )
    legacy.database["codelib"].insert_one(
        {
            "_id": lib,
            "name": "requests",
            "language": "python",
            "created_at": at(0),
            "updated_at": at(0),
        }
    )
    assert legacy.migrate() == [1, 2, 3, 4, 11, 13]

    stored = legacy.permissions.get("p", "a@x.org")
    assert (stored.id, stored.role, stored.created_at) == (str(permission), Role.MODERATOR, at(0))
    changed = legacy.permissions.upsert("p", "a@x.org", Role.VIEWER)
    assert (changed.id, changed.role, changed.created_at) == (str(permission), Role.VIEWER, at(0))
    assert [p.id for p in legacy.permissions.list_by_project("p")] == [str(permission)]

    assert legacy.libs.add("requests", "python").id == str(lib)
    assert [(x.id, x.name) for x in legacy.libs.list("python")] == [(str(lib), "requests")]
