"""Flows in MongoDB, without multi-document transactions (a standalone server has none).

Every change of one document is one atomic operation; where a change spans
documents it is ordered so that readers always get the right answer:

- Version numbers: one above the flow's highest, inserted under the unique
  (flow, number) index; losing the race to a concurrent creator is retried.
- Publishing: the definition's ``publish_seq`` is incremented atomically and
  the version set published with that number; then every published version of
  the flow with a lower number than the highest is archived. The published
  version is the published one with the highest number, so between the two
  steps (or after a crash between them) it is already the new one, and racing
  publishers end with exactly one published version, the latest to count.
- Leases: ``claim`` matches only an unfinished execution whose lease is absent
  or expired at ``now``; ``save`` and ``renew`` only one whose ``lease_owner``
  is ``owner`` (``save`` also at the claim's ``revision``), as the SQL store.
  ``request_cancel`` is one pipeline update deciding between "cancelled now"
  and "cancel requested".
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from codeactions_core.errors import Conflict, NotFound
from codeactions_core.flows.model import (
    ExecutionStatus,
    FlowDefinition,
    FlowExecution,
    FlowVersion,
    NewExecution,
    NewFlow,
    VersionStatus,
)
from codeactions_mongo.errors import mongo_errors_as_store_errors
from codeactions_mongo.fields import bson_time, object_id
from codeactions_mongo.fields import now as stored_now
from codeactions_mongo.flow_documents import (
    UNFINISHED,
    definition_document,
    execution_document,
    execution_state,
    to_definition,
    to_execution,
    to_version,
    version_document,
)

VERSION_ATTEMPTS = 100  # each lost race means another creator got a number
NEWEST_FIRST = [("created_at", -1), ("_id", -1)]
AFTER = ReturnDocument.AFTER
PUBLISHED = str(VersionStatus.PUBLISHED)


def not_held(moment: datetime) -> list[dict[str, Any]]:
    """An ``$or``: nobody holds a lease still valid at ``moment``."""
    return [
        {"lease_owner": None},
        {"lease_expires_at": None},
        {"lease_expires_at": {"$lte": bson_time(moment)}},
    ]


def cancellation(moment: datetime) -> list[dict[str, Any]]:
    """The pipeline update of ``request_cancel``: flag a held execution, finish any other."""
    held = {
        "$and": [
            {"$ne": [{"$ifNull": ["$lease_owner", None]}, None]},
            {"$gt": ["$lease_expires_at", bson_time(moment)]},
        ]
    }

    def unless_held(value: Any, field: str) -> dict[str, Any]:
        return {"$cond": [held, f"${field}", value]}

    return [
        {
            "$set": {
                "status": unless_held(str(ExecutionStatus.CANCELLED), "status"),
                "finished_at": unless_held(bson_time(moment), "finished_at"),
                "lease_owner": unless_held(None, "lease_owner"),
                "lease_expires_at": unless_held(None, "lease_expires_at"),
                "cancel_requested": True,
            }
        }
    ]


@mongo_errors_as_store_errors
class MongoFlows:
    def __init__(
        self, definitions: Collection, versions: Collection, executions: Collection
    ) -> None:
        self.definitions = definitions
        self.versions = versions
        self.executions = executions

    # -- definitions ----------------------------------------------------------------------

    def create_definition(self, new: NewFlow) -> FlowDefinition:
        document = definition_document(new, stored_now())
        self.definitions.insert_one(document)
        return to_definition(document)

    def get_definition(self, flow_id: str) -> FlowDefinition | None:
        document = self._find(self.definitions, flow_id)
        return to_definition(document) if document else None

    def list_definitions(
        self, project_uuid: str, *, active_only: bool = False
    ) -> list[FlowDefinition]:
        query: dict[str, Any] = {"project_uuid": project_uuid}
        if active_only:
            query["is_active"] = True
        documents = self.definitions.find(query, sort=NEWEST_FIRST)
        return [to_definition(document) for document in documents]

    def update_definition(
        self,
        flow_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        is_active: bool | None = None,
    ) -> FlowDefinition | None:
        oid = object_id(flow_id)
        if oid is None:
            return None
        changes: dict[str, Any] = {"updated_at": stored_now()}
        given = (("name", name), ("description", description), ("is_active", is_active))
        changes.update({field: value for field, value in given if value is not None})
        document = self.definitions.find_one_and_update(
            {"_id": oid}, {"$set": changes}, return_document=AFTER
        )
        return to_definition(document) if document else None

    # -- versions -------------------------------------------------------------------------

    def create_version(
        self,
        flow_id: str,
        steps: list[dict[str, Any]],
        *,
        change_notes: str = "",
        created_by: str = "",
    ) -> FlowVersion:
        oid = object_id(flow_id)
        if oid is None or self.definitions.find_one({"_id": oid}, {"_id": 1}) is None:
            raise NotFound(f"no flow {flow_id}")
        for _ in range(VERSION_ATTEMPTS):
            highest = self.versions.find_one(
                {"flow_definition_id": oid}, {"version_number": 1}, sort=[("version_number", -1)]
            )
            number = int(highest["version_number"]) + 1 if highest else 1
            document = version_document(oid, number, steps, change_notes, created_by, stored_now())
            try:
                self.versions.insert_one(document)
            except DuplicateKeyError:  # a concurrent creator took this number
                continue
            return to_version(document)
        raise Conflict(f"flow {flow_id} is getting new versions too fast; try again")

    def get_version(self, flow_id: str, version_number: int) -> FlowVersion | None:
        key = self._version_key(flow_id, version_number)
        document = self.versions.find_one(key) if key else None
        return to_version(document) if document else None

    def get_version_by_id(self, version_id: str) -> FlowVersion | None:
        document = self._find(self.versions, version_id)
        return to_version(document) if document else None

    def list_versions(self, flow_id: str) -> list[FlowVersion]:
        oid = object_id(flow_id)
        if oid is None:
            return []
        documents = self.versions.find({"flow_definition_id": oid}, sort=[("version_number", -1)])
        return [to_version(document) for document in documents]

    def published_version(self, flow_id: str) -> FlowVersion | None:
        oid = object_id(flow_id)
        if oid is None:
            return None
        document = self.versions.find_one(
            {"flow_definition_id": oid, "status": PUBLISHED},
            sort=[("publish_seq", -1), ("_id", -1)],
        )
        return to_version(document) if document else None

    def update_draft(
        self,
        flow_id: str,
        version_number: int,
        *,
        steps: list[dict[str, Any]] | None = None,
        change_notes: str | None = None,
    ) -> FlowVersion | None:
        key = self._version_key(flow_id, version_number)
        if key is None:
            return None
        changes: dict[str, Any] = {}
        if steps is not None:
            changes["steps"] = steps
        if change_notes is not None:
            changes["change_notes"] = change_notes
        if changes:
            document = self.versions.find_one_and_update(
                {**key, "status": str(VersionStatus.DRAFT)},
                {"$set": changes},
                return_document=AFTER,
            )
            if document is not None:
                return to_version(document)
        document = self.versions.find_one(key)
        if document is None:
            return None
        version = to_version(document)
        if version.status is not VersionStatus.DRAFT:
            raise Conflict(
                f"version {version_number} is {version.status}: only a draft can be changed"
            )
        return version

    def publish(
        self, flow_id: str, version_number: int, *, allowed_from: Sequence[VersionStatus]
    ) -> FlowVersion | None:
        key = self._version_key(flow_id, version_number)
        document = self.versions.find_one(key) if key else None
        if document is None:
            return None
        allowed = [str(status) for status in allowed_from]
        if document.get("status") not in allowed:
            raise self._not_publishable(version_number, document.get("status"), allowed)
        counter = self.definitions.find_one_and_update(
            {"_id": key["flow_definition_id"]}, {"$inc": {"publish_seq": 1}}, return_document=AFTER
        )
        if counter is None:
            return None
        published = self.versions.find_one_and_update(
            {"_id": document["_id"], "status": {"$in": allowed}},
            {
                "$set": {
                    "status": PUBLISHED,
                    "published_at": stored_now(),
                    "publish_seq": counter["publish_seq"],
                }
            },
            return_document=AFTER,
        )
        if published is None:  # its status changed meanwhile
            current = self.versions.find_one({"_id": document["_id"]}) or {}
            raise self._not_publishable(version_number, current.get("status"), allowed)
        self._archive_superseded(key["flow_definition_id"])
        return to_version(published)

    # -- executions -----------------------------------------------------------------------

    def create_execution(self, new: NewExecution) -> FlowExecution:
        flow, version = object_id(new.flow_definition_id), object_id(new.flow_version_id)
        if (
            flow is None
            or version is None
            or self.versions.find_one({"_id": version, "flow_definition_id": flow}, {"_id": 1})
            is None
        ):
            raise NotFound(f"flow {new.flow_definition_id} has no version {new.flow_version_id}")
        document = execution_document(new, flow, version, stored_now())
        self.executions.insert_one(document)
        return to_execution(document)

    def get_execution(self, execution_id: str) -> FlowExecution | None:
        document = self._find(self.executions, execution_id)
        return to_execution(document) if document else None

    def list_executions(
        self,
        flow_id: str,
        *,
        status: ExecutionStatus | None = None,
        lead_id: str | None = None,
        version_id: str | None = None,
        limit: int = 100,
    ) -> list[FlowExecution]:
        flow = object_id(flow_id)
        if flow is None or limit <= 0:
            return []
        query: dict[str, Any] = {"flow_definition_id": flow}
        if status is not None:
            query["status"] = str(status)
        if lead_id is not None:
            query["lead_id"] = lead_id
        if version_id is not None:
            version = object_id(version_id)
            if version is None:
                return []
            query["flow_version_id"] = version
        documents = self.executions.find(query, sort=NEWEST_FIRST, limit=limit)
        return [to_execution(document) for document in documents]

    def claim(
        self, execution_id: str, owner: str, lease_until: datetime, now: datetime
    ) -> FlowExecution | None:
        oid = object_id(execution_id)
        if oid is None:
            return None
        document = self.executions.find_one_and_update(
            {"_id": oid, "status": {"$in": UNFINISHED}, "$or": not_held(now)},
            {
                "$set": {"lease_owner": owner, "lease_expires_at": bson_time(lease_until)},
                "$inc": {"revision": 1},
            },
            return_document=AFTER,
        )
        return to_execution(document) if document else None

    def renew(self, execution_id: str, owner: str, lease_until: datetime) -> bool:
        oid = object_id(execution_id)
        if oid is None or owner is None:
            return False
        renewed = self.executions.update_one(
            {"_id": oid, "lease_owner": owner},
            {"$set": {"lease_expires_at": bson_time(lease_until)}},
        )
        return renewed.matched_count > 0

    def save(self, execution: FlowExecution, owner: str, *, release: bool) -> FlowExecution | None:
        oid = object_id(execution.id)
        if oid is None or owner is None:
            return None
        changes = execution_state(execution)
        if release:
            changes.update(lease_owner=None, lease_expires_at=None)
        document = self.executions.find_one_and_update(
            {"_id": oid, "lease_owner": owner, "revision": execution.revision},
            {"$set": changes},
            return_document=AFTER,
        )
        return to_execution(document) if document else None

    def request_cancel(self, execution_id: str, now: datetime) -> FlowExecution | None:
        oid = object_id(execution_id)
        if oid is None:
            return None
        document = self.executions.find_one_and_update(
            {"_id": oid, "status": {"$in": UNFINISHED}}, cancellation(now), return_document=AFTER
        )
        if document is None:  # unknown, or already finished: as it is
            document = self.executions.find_one({"_id": oid})
        return to_execution(document) if document else None

    def due_executions(self, due_by: datetime, now: datetime, limit: int) -> list[str]:
        if limit <= 0:
            return []
        documents = self.executions.find(
            {
                "status": {"$in": UNFINISHED},
                "resume_at": {"$lte": bson_time(due_by)},
                "$or": not_held(now),
            },
            {"_id": 1},
            sort=[("resume_at", 1), ("created_at", 1), ("_id", 1)],
            limit=limit,
        )
        return [str(document["_id"]) for document in documents]

    # -- helpers --------------------------------------------------------------------------

    def _find(self, collection: Collection, entity_id: str) -> dict[str, Any] | None:
        oid = object_id(entity_id)
        return collection.find_one({"_id": oid}) if oid else None

    def _version_key(self, flow_id: str, version_number: int) -> dict[str, Any] | None:
        oid = object_id(flow_id)
        if oid is None:
            return None
        return {"flow_definition_id": oid, "version_number": version_number}

    def _archive_superseded(self, flow: ObjectId) -> None:
        """Archive every published version of ``flow`` but the one published last."""
        newest = self.versions.find_one(
            {"flow_definition_id": flow, "status": PUBLISHED},
            {"publish_seq": 1},
            sort=[("publish_seq", -1)],
        )
        if newest is not None:
            self.versions.update_many(
                {
                    "flow_definition_id": flow,
                    "status": PUBLISHED,
                    "publish_seq": {"$lt": newest["publish_seq"]},
                },
                {"$set": {"status": str(VersionStatus.ARCHIVED)}},
            )

    @staticmethod
    def _not_publishable(version_number: int, status: object, allowed: list[str]) -> Conflict:
        choices = " or ".join(allowed) or "no"
        return Conflict(
            f"version {version_number} is {status}: only {choices} versions can be published"
        )
