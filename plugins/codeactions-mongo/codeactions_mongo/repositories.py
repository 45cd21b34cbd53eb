"""The store's repositories, one per collection."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from codeactions_core.model import (
    Authorization,
    Code,
    CodeChanges,
    CodeLib,
    CodeLog,
    CodeRun,
    CodeType,
    NewCode,
    Page,
    Project,
    Role,
    RunStatus,
    UserPermission,
)
from codeactions_core.store import NewRun
from codeactions_mongo.documents import (
    authorization_documents,
    code_changes,
    code_document,
    log_document,
    run_document,
    to_code,
    to_lib,
    to_log,
    to_permission,
    to_project,
    to_run,
)
from codeactions_mongo.errors import mongo_errors_as_store_errors
from codeactions_mongo.fields import bson_time, id_query, now, reference_query

T = TypeVar("T")

Document = Mapping[str, Any]
Convert = Callable[[Document], T]
Sort = list[tuple[str, int]]

NEWEST_FIRST: Sort = [("created_at", -1), ("_id", -1)]
OLDEST_FIRST: Sort = [("created_at", 1), ("_id", 1)]
# Lines written in one millisecond tie on created_at; their ObjectIds, made in
# insertion order, keep the order they were written in.
LOGS_IN_ORDER: Sort = [("created_at", 1), ("_id", 1)]
LOGS_NEWEST_FIRST: Sort = [("created_at", -1), ("_id", -1)]


class OnCollection:
    """A repository over one collection."""

    def __init__(self, collection: Collection) -> None:
        self.collection = collection


def insert(collection: Collection, document: dict[str, Any], convert: Convert[T]) -> T:
    collection.insert_one(document)
    return convert(document)


def find_by_id(collection: Collection, entity_id: str, convert: Convert[T]) -> T | None:
    query = id_query(entity_id)
    document = collection.find_one(query) if query else None
    return convert(document) if document else None


def update_by_id(
    collection: Collection,
    entity_id: str,
    changes: dict[str, Any],
    convert: Convert[T],
    *,
    unset: Sequence[str] = (),
) -> T | None:
    """Set ``changes`` (and remove ``unset``) on the document ``entity_id``; convert what
    it became."""
    query = id_query(entity_id)
    if query is None:
        return None
    update: dict[str, Any] = {"$set": changes}
    if unset:
        update["$unset"] = dict.fromkeys(unset, "")
    document = collection.find_one_and_update(query, update, return_document=ReturnDocument.AFTER)
    return convert(document) if document else None


def upsert_one(collection: Collection, key: dict[str, Any], update: dict[str, Any]) -> Document:
    """Update the document with ``key`` or insert it; return it as it is now."""

    def attempt() -> Document:
        return collection.find_one_and_update(
            key, update, upsert=True, return_document=ReturnDocument.AFTER
        )

    try:
        return attempt()
    except DuplicateKeyError:  # a concurrent upsert inserted it first: now it is an update
        return attempt()


def delete_oldest(collection: Collection, cutoff: datetime, limit: int) -> int:
    """Delete at most ``limit`` documents created before ``cutoff``, oldest first."""
    if limit <= 0:
        return 0
    oldest = collection.find(
        {"created_at": {"$lt": bson_time(cutoff)}}, {"_id": 1}, sort=OLDEST_FIRST, limit=limit
    )
    ids = [document["_id"] for document in oldest]
    if not ids:
        return 0
    return collection.delete_many({"_id": {"$in": ids}}).deleted_count


@mongo_errors_as_store_errors
class MongoCodes(OnCollection):
    def create(self, new: NewCode) -> Code:
        return insert(self.collection, code_document(new, now()), to_code)

    def get(self, code_id: str) -> Code | None:
        return find_by_id(self.collection, code_id, to_code)

    def list_by_project(self, project_uuid: str, code_type: CodeType | None = None) -> list[Code]:
        query: dict[str, Any] = {"project_uuid": project_uuid}
        if code_type is not None:
            query["type"] = str(code_type)
        return [to_code(document) for document in self.collection.find(query, sort=NEWEST_FIRST)]

    def sources(self, language: str) -> Iterator[str]:
        for document in self.collection.find({"language": language}, {"source": 1}):
            yield document.get("source") or ""

    def update(self, code_id: str, changes: CodeChanges) -> Code | None:
        return update_by_id(self.collection, code_id, code_changes(changes, now()), to_code)

    def delete(self, code_id: str) -> bool:
        query = id_query(code_id)
        return query is not None and self.collection.delete_one(query).deleted_count > 0


UNFINISHED = {"$in": [str(RunStatus.QUEUED), str(RunStatus.STARTED)]}


@mongo_errors_as_store_errors
class MongoRuns(OnCollection):
    def create(self, new: NewRun) -> CodeRun:
        return insert(self.collection, run_document(new, now()), to_run)

    def get(self, run_id: str) -> CodeRun | None:
        return find_by_id(self.collection, run_id, to_run)

    def update(
        self,
        run_id: str,
        *,
        status: RunStatus,
        result: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> CodeRun | None:
        changes: dict[str, Any] = {"status": str(status), "updated_at": now()}
        if result is not None:
            changes["result"] = result
        if extra is not None:
            changes["extra"] = extra
        unset = ("lease_expires_at",) if status.terminal else ()
        return update_by_id(self.collection, run_id, changes, to_run, unset=unset)

    def list_by_code(
        self,
        code_id: str,
        *,
        after: datetime | None = None,
        before: datetime | None = None,
        limit: int = 1000,
    ) -> list[CodeRun]:
        code = reference_query(code_id)
        if code is None or limit <= 0:
            return []
        query: dict[str, Any] = {"code_id": code}
        window = {}
        if after is not None:
            window["$gte"] = bson_time(after)  # inclusive, as they were
        if before is not None:
            window["$lte"] = bson_time(before)
        if window:
            query["created_at"] = window
        documents = self.collection.find(query, sort=NEWEST_FIRST, limit=limit)
        return [to_run(document) for document in documents]

    def delete_older_than(self, cutoff: datetime, limit: int) -> int:
        return delete_oldest(self.collection, cutoff, limit)

    def fail_abandoned(self, last_touched_before: datetime, reason: str) -> int:
        unfinished = {
            "status": {"$in": [str(RunStatus.QUEUED), str(RunStatus.STARTED)]},
            "updated_at": {"$lt": bson_time(last_touched_before)},
        }
        changes = {"$set": {"status": str(RunStatus.FAILED), "result": reason, "updated_at": now()}}
        held = held_by_broker(self.collection, unfinished)
        if held:  # async runs waiting in RabbitMQ for a worker are queued, not abandoned
            unfinished = {**unfinished, "_id": {"$nin": held}}
        return self.collection.update_many(unfinished, changes).modified_count

    def restore(self, run: CodeRun) -> bool:
        query = id_query(run.id)
        if query is None or self.collection.find_one(query, {"_id": 1}) is not None:
            return False
        document = run_document(
            NewRun(
                code_id=run.code_id,
                status=run.status,
                params=run.params,
                body=run.body,
                headers=run.headers,
                result=run.result,
            ),
            run.created_at,
        )
        document.update(_id=ObjectId(run.id), extra=run.extra, updated_at=run.updated_at)
        try:
            self.collection.insert_one(document)
        except DuplicateKeyError:
            return False
        return True

    def renew_leases(self, owner: str, until: datetime) -> int:
        query = {"owner": owner, "lease_expires_at": {"$exists": True}, "status": UNFINISHED}
        changes = {"$set": {"lease_expires_at": bson_time(until)}}
        return self.collection.update_many(query, changes).matched_count

    def fail_expired_leases(self, now: datetime, reason: str) -> int:
        return self._fail({"lease_expires_at": {"$exists": True, "$lt": bson_time(now)}}, reason)

    def fail_owned(self, owner: str, reason: str, *, prefix: bool = False) -> int:
        match: Any = {"$regex": "^" + re.escape(owner)} if prefix else owner
        return self._fail({"owner": match}, reason)

    def _fail(self, query: dict[str, Any], reason: str) -> int:
        changes = {
            "$set": {"status": str(RunStatus.FAILED), "result": reason, "updated_at": now()},
            "$unset": {"lease_expires_at": ""},
        }
        return self.collection.update_many({**query, "status": UNFINISHED}, changes).modified_count


def held_by_broker(runs: Any, unfinished: dict[str, Any]) -> list[Any]:
    """The ids of the queued runs among ``unfinished`` that an async run record says wait in
    the broker (collection ``async_runs``, keyed by the run id's text)."""
    queued = {**unfinished, "status": str(RunStatus.QUEUED)}
    ids = {str(document["_id"]): document["_id"] for document in runs.find(queued, {"_id": 1})}
    if not ids:
        return []
    records = runs.database["async_runs"].find(
        {"_id": {"$in": list(ids)}, "via": "broker"}, {"_id": 1}
    )
    return [ids[record["_id"]] for record in records]


@mongo_errors_as_store_errors
class MongoLogs(OnCollection):
    """The database log store (the default one)."""

    def add_many(self, logs: Sequence[CodeLog]) -> None:
        if logs:
            self.collection.insert_many([log_document(log) for log in logs], ordered=True)

    def get(self, log_id: str) -> CodeLog | None:
        return find_by_id(self.collection, log_id, to_log)

    def list_by_run(self, run: CodeRun, *, page: int, per_page: int) -> Page:
        return self._page("run_id", run.id, LOGS_IN_ORDER, page, per_page)

    def list_by_code(self, code_id: str, *, page: int, per_page: int) -> Page:
        return self._page("code_id", code_id, LOGS_NEWEST_FIRST, page, per_page)

    def delete_older_than(self, cutoff: datetime, limit: int) -> int:
        return delete_oldest(self.collection, cutoff, limit)

    def _page(self, field: str, owner_id: str, sort: Sort, page: int, per_page: int) -> Page:
        owner = reference_query(owner_id)
        if owner is None or per_page <= 0:
            return Page(items=[], total=0, page=page, per_page=per_page)
        query = {field: owner}
        total = self.collection.count_documents(query)
        documents = self.collection.find(
            query, sort=sort, skip=max(page - 1, 0) * per_page, limit=per_page
        )
        items = [to_log(document) for document in documents]
        return Page(items=items, total=total, page=page, per_page=per_page)


@mongo_errors_as_store_errors
class MongoProjects(OnCollection):
    def get(self, project_uuid: str) -> Project | None:
        document = self.collection.find_one({"uuid": project_uuid})
        return to_project(document) if document else None

    def upsert(
        self, project_uuid: str, name: str, authorizations: Sequence[Authorization]
    ) -> Project:
        moment = now()
        changes = {
            "name": name,
            "authorizations": authorization_documents(authorizations),
            "updated_at": moment,
        }
        update = {"$set": changes, "$setOnInsert": {"created_at": moment}}
        return to_project(upsert_one(self.collection, {"uuid": project_uuid}, update))


@mongo_errors_as_store_errors
class MongoPermissions(OnCollection):
    def get(self, project_uuid: str, email: str) -> UserPermission | None:
        document = self.collection.find_one({"project_uuid": project_uuid, "email": email})
        return to_permission(document) if document else None

    def list_by_project(self, project_uuid: str) -> list[UserPermission]:
        documents = self.collection.find(
            {"project_uuid": project_uuid}, sort=[("email", 1), ("_id", 1)]
        )
        return [to_permission(document) for document in documents]

    def upsert(self, project_uuid: str, email: str, role: Role) -> UserPermission:
        moment = now()
        update = {
            "$set": {"role": int(role), "updated_at": moment},
            "$setOnInsert": {"created_at": moment},
        }
        key = {"project_uuid": project_uuid, "email": email}
        return to_permission(upsert_one(self.collection, key, update))

    def delete(self, project_uuid: str, email: str) -> bool:
        deleted = self.collection.delete_one({"project_uuid": project_uuid, "email": email})
        return deleted.deleted_count > 0


@mongo_errors_as_store_errors
class MongoLibs(OnCollection):
    def add(self, name: str, language: str) -> CodeLib:
        moment = now()
        update = {"$setOnInsert": {"created_at": moment, "updated_at": moment}}
        key = {"name": name, "language": language}
        return to_lib(upsert_one(self.collection, key, update))

    def list(self, language: str | None = None) -> list[CodeLib]:
        query = {} if language is None else {"language": language}
        documents = self.collection.find(query, sort=[("name", 1), ("_id", 1)])
        return [to_lib(document) for document in documents]
