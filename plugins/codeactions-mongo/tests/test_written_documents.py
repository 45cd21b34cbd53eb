"""What the store writes is what the old Go service reads: collections, field names, types."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from bson import ObjectId
from codeactions_mongo import MongoStore

from codeactions_core.model import Authorization, CodeLog, CodeType, LogType, NewCode, Role
from codeactions_core.store import NewRun


def stored(store: MongoStore, collection: str, entity_id: str) -> dict:
    document = store.database[collection].find_one({"_id": ObjectId(entity_id)})
    assert document is not None, f"no {collection} document {entity_id}"
    return document


def a_code(**overrides: object) -> NewCode:
    fields: dict[str, object] = {
        "name": "hello",
        "type": CodeType.ENDPOINT,
        "source": "x",
        "language": "python",
        "project_uuid": "p",
        "timeout": 45,
        "url": "https://x.org",
    }
    fields.update(overrides)
    return NewCode(**fields)  # type: ignore[arg-type]


def test_a_code_document(mock_store: MongoStore) -> None:
    code = mock_store.codes.create(a_code())
    document = stored(mock_store, "code", code.id)
    assert document == {
        "_id": ObjectId(code.id),
        "name": "hello",
        "type": "endpoint",
        "source": "x",
        "language": "python",
        "url": "https://x.org",
        "project_uuid": "p",
        "timeout": 45,
        "created_at": code.created_at,
        "updated_at": code.updated_at,
    }


def test_times_are_utc_milliseconds_and_read_back_equal(mock_store: MongoStore) -> None:
    code = mock_store.codes.create(a_code())
    assert code.created_at.tzinfo is UTC and code.created_at.microsecond % 1000 == 0
    assert mock_store.codes.get(code.id).created_at == code.created_at
    local = timezone(timedelta(hours=-3))
    moment = datetime(2024, 5, 6, 7, 8, 9, 987654, tzinfo=local)
    line = CodeLog(
        id="",
        run_id=str(ObjectId()),
        code_id=code.id,
        type=LogType.INFO,
        content="x",
        created_at=moment,
        updated_at=moment,
    )
    mock_store.logs.add_many([line])
    (read,) = mock_store.logs.list_by_code(code.id, page=1, per_page=20).items
    assert read.created_at == datetime(2024, 5, 6, 10, 8, 9, 987000, tzinfo=UTC)
    assert read.created_at.tzinfo is UTC


def test_a_run_document_refers_to_its_code_by_object_id(mock_store: MongoStore) -> None:
    code = mock_store.codes.create(a_code())
    run = mock_store.runs.create(NewRun(code_id=code.id, params={"a": "1"}, headers={"H": ["v"]}))
    document = stored(mock_store, "coderun", run.id)
    assert document == {
        "_id": ObjectId(run.id),
        "code_id": ObjectId(code.id),
        "status": "queued",
        "result": "",
        "extra": {},
        "params": {"a": "1"},
        "body": "",
        "headers": {"H": ["v"]},
        "created_at": run.created_at,
        "updated_at": run.updated_at,
    }


def test_log_documents_keep_their_batch_position(mock_store: MongoStore) -> None:
    run_id, code_id = str(ObjectId()), str(ObjectId())
    mock_store.logs.add_many(
        [
            CodeLog(id="", run_id=run_id, code_id=code_id, type=LogType.ERROR, content=f"{i}")
            for i in range(3)
        ]
    )
    documents = list(mock_store.database["codelog"].find({}, sort=[("_id", 1)]))
    assert [d["content"] for d in documents] == ["0", "1", "2"]
    assert {(d["run_id"], d["code_id"], d["type"]) for d in documents} == {
        (ObjectId(run_id), ObjectId(code_id), "error")
    }
    assert set(documents[0]) == {
        "_id",
        "run_id",
        "code_id",
        "type",
        "content",
        "created_at",
        "updated_at",
    }


def test_a_project_document_has_the_old_struct_authorizations(mock_store: MongoStore) -> None:
    project = mock_store.projects.upsert("p-1", "One", [Authorization("a@x.org", Role.MODERATOR)])
    document = stored(mock_store, "project", project.id)
    assert document == {
        "_id": ObjectId(project.id),
        "uuid": "p-1",
        "name": "One",
        "authorizations": [{"useremail": "a@x.org", "role": "3"}],
        "created_at": project.created_at,
        "updated_at": project.updated_at,
    }


def test_permission_and_library_documents(mock_store: MongoStore) -> None:
    permission = mock_store.permissions.upsert("p-1", "a@x.org", Role.CONTRIBUTOR)
    assert stored(mock_store, "user_permissions", permission.id) == {
        "_id": ObjectId(permission.id),
        "project_uuid": "p-1",
        "email": "a@x.org",
        "role": 2,
        "created_at": permission.created_at,
        "updated_at": permission.updated_at,
    }
    lib = mock_store.libs.add("arrow", "python")
    assert stored(mock_store, "codelib", lib.id) == {
        "_id": ObjectId(lib.id),
        "name": "arrow",
        "language": "python",
        "created_at": lib.created_at,
        "updated_at": lib.updated_at,
    }
