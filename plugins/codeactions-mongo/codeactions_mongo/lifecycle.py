"""Code versions and schedules on MongoDB.

A version is inserted under a unique (code_id, number) key, then the code document
takes its program; without multi-document transactions (a standalone server has
none) a crash in between leaves the code one version behind its newest version
row, which the next commit numbers past.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from codeactions_core.model import CodeVersion, NewCodeVersion
from codeactions_core.scheduling.model import (
    FiringStatus,
    NewSchedule,
    Schedule,
    ScheduleFiring,
    TargetType,
)
from codeactions_mongo.documents import CODES, to_code
from codeactions_mongo.errors import mongo_errors_as_store_errors
from codeactions_mongo.fields import bson_time, id_query, now

CODE_VERSIONS = "code_versions"
SCHEDULES = "schedules"
SCHEDULE_FIRINGS = "schedule_firings"
COMMIT_ATTEMPTS = 20


def create_version_indexes(database: Database) -> None:
    """The unique version numbers; every code stored before versions becomes version 1."""
    database[CODE_VERSIONS].create_index(
        [("code_id", ASCENDING), ("number", ASCENDING)], unique=True
    )
    versions = MongoVersions(database[CODES], database[CODE_VERSIONS])
    for found in database[CODES].find({"version": None}, {"_id": 1}):
        code = to_code(database[CODES].find_one({"_id": found["_id"]}) or found)
        versions.ensure_first(
            code.id,
            NewCodeVersion(
                source=code.source,
                language=code.language,
                timeout=code.timeout,
                note="stored before versions",
            ),
        )


def create_schedule_indexes(database: Database) -> None:
    database[SCHEDULES].create_index([("target_type", ASCENDING), ("target_id", ASCENDING)])
    database[SCHEDULES].create_index([("next_fire_at", ASCENDING)])
    database[SCHEDULE_FIRINGS].create_index(
        [("schedule_id", ASCENDING), ("scheduled_for", ASCENDING)], unique=True
    )


def _optional_time(value: object) -> datetime | None:
    return bson_time(value) if isinstance(value, datetime) else None


def to_version(document: Mapping[str, Any]) -> CodeVersion:
    return CodeVersion(
        code_id=str(document["code_id"]),
        number=int(document["number"]),
        source=document.get("source") or "",
        language=document.get("language") or "",
        timeout=int(document.get("timeout") or 60),
        sha256=document.get("sha256") or "",
        author=document.get("author") or "",
        note=document.get("note") or "",
        created_at=bson_time(document["created_at"]),
    )


@mongo_errors_as_store_errors
class MongoVersions:
    def __init__(self, codes: Collection, versions: Collection) -> None:
        self.codes = codes
        self.collection = versions

    def commit(self, code_id: str, new: NewCodeVersion) -> CodeVersion | None:
        query = id_query(code_id)
        code = self.codes.find_one(query, {"updated_at": 1}) if query else None
        if code is None:
            return None
        for _ in range(COMMIT_ATTEMPTS):
            number = self._last_number(code_id) + 1
            try:
                first = number == 1 and isinstance(code.get("updated_at"), datetime)
                moment = bson_time(code["updated_at"]) if first else now()
                version = self._insert(code_id, number, new, moment)
            except DuplicateKeyError:  # a concurrent commit took the number: take the next
                continue
            self.codes.update_one(
                query,
                {
                    "$set": {
                        "source": new.source,
                        "language": new.language,
                        "timeout": new.timeout,
                        "version": number,
                        "updated_at": version.created_at,
                    }
                },
            )
            return version
        raise DuplicateKeyError(f"no free version number for code {code_id} after retries")

    def ensure_first(self, code_id: str, new: NewCodeVersion) -> CodeVersion | None:
        query = id_query(code_id)
        code = self.codes.find_one(query, {"version": 1, "updated_at": 1}) if query else None
        if code is None:
            return None
        if self._last_number(code_id) == 0:
            try:
                self._insert(code_id, 1, new, bson_time(code.get("updated_at") or now()))
            except DuplicateKeyError:
                pass  # a concurrent first read recorded it
        current = code.get("version") or self._last_number(code_id)
        self.codes.update_one({**query, "version": None}, {"$set": {"version": current}})
        return self.get(code_id, current)

    def get(self, code_id: str, number: int) -> CodeVersion | None:
        document = self.collection.find_one({"code_id": code_id, "number": number})
        return to_version(document) if document else None

    def list(self, code_id: str) -> list[CodeVersion]:
        found = self.collection.find({"code_id": code_id}, sort=[("number", DESCENDING)])
        return [to_version(document) for document in found]

    def delete_for_code(self, code_id: str) -> int:
        return self.collection.delete_many({"code_id": code_id}).deleted_count

    def _last_number(self, code_id: str) -> int:
        last = self.collection.find_one(
            {"code_id": code_id}, {"number": 1}, sort=[("number", DESCENDING)]
        )
        return int(last["number"]) if last else 0

    def _insert(
        self, code_id: str, number: int, new: NewCodeVersion, moment: datetime
    ) -> CodeVersion:
        version = new.numbered(code_id, number, moment)
        self.collection.insert_one(
            {
                "_id": ObjectId(),
                "code_id": code_id,
                "number": number,
                "source": new.source,
                "language": new.language,
                "timeout": new.timeout,
                "sha256": version.sha256,
                "author": new.author,
                "note": new.note,
                "created_at": moment,
            }
        )
        return version


def to_schedule(document: Mapping[str, Any]) -> Schedule:
    return Schedule(
        id=str(document["_id"]),
        target_type=TargetType(document["target_type"]),
        target_id=str(document["target_id"]),
        project_uuid=document.get("project_uuid") or "",
        cron=document["cron"],
        timezone=document["timezone"],
        next_fire_at=bson_time(document["next_fire_at"]),
        params=dict(document.get("params") or {}),
        variables=dict(document.get("variables") or {}),
        version=document.get("version"),
        created_by=document.get("created_by") or "",
        last_fired_at=_optional_time(document.get("last_fired_at")),
        missed=int(document.get("missed") or 0),
        last_missed_at=_optional_time(document.get("last_missed_at")),
        created_at=bson_time(document["created_at"]),
        updated_at=bson_time(document["updated_at"]),
    )


def to_firing(document: Mapping[str, Any]) -> ScheduleFiring:
    return ScheduleFiring(
        id=str(document["_id"]),
        schedule_id=str(document["schedule_id"]),
        scheduled_for=bson_time(document["scheduled_for"]),
        status=FiringStatus(document["status"]),
        fired_at=bson_time(document["fired_at"]),
        run_id=document.get("run_id"),
        execution_id=document.get("execution_id"),
        error=document.get("error") or "",
        holder=document.get("holder") or "",
    )


@mongo_errors_as_store_errors
class MongoSchedules:
    def __init__(self, schedules: Collection, firings: Collection) -> None:
        self.collection = schedules
        self.firings_collection = firings

    def create(self, new: NewSchedule) -> Schedule:
        moment = now()
        document = {
            "_id": ObjectId(),
            "target_type": str(new.target_type),
            "target_id": new.target_id,
            "project_uuid": new.project_uuid,
            "cron": new.cron,
            "timezone": new.timezone,
            "params": dict(new.params),
            "variables": dict(new.variables),
            "version": new.version,
            "created_by": new.created_by,
            "next_fire_at": bson_time(new.next_fire_at),
            "last_fired_at": None,
            "missed": 0,
            "last_missed_at": None,
            "created_at": moment,
            "updated_at": moment,
        }
        self.collection.insert_one(document)
        return to_schedule(document)

    def get(self, schedule_id: str) -> Schedule | None:
        query = id_query(schedule_id)
        document = self.collection.find_one(query) if query else None
        return to_schedule(document) if document else None

    def list_by_target(self, target_type: TargetType, target_id: str) -> list[Schedule]:
        found = self.collection.find(
            {"target_type": str(target_type), "target_id": target_id},
            sort=[("created_at", ASCENDING), ("_id", ASCENDING)],
        )
        return [to_schedule(document) for document in found]

    def delete(self, schedule_id: str) -> bool:
        query = id_query(schedule_id)
        if query is None:
            return False
        self.firings_collection.delete_many({"schedule_id": schedule_id})
        return self.collection.delete_one(query).deleted_count > 0

    def delete_for_target(self, target_type: TargetType, target_id: str) -> int:
        return sum(
            self.delete(schedule.id) for schedule in self.list_by_target(target_type, target_id)
        )

    def due(self, now: datetime, limit: int) -> list[Schedule]:
        found = self.collection.find(
            {"next_fire_at": {"$lte": bson_time(now)}},
            sort=[("next_fire_at", ASCENDING), ("_id", ASCENDING)],
            limit=limit,
        )
        return [to_schedule(document) for document in found]

    def advance(
        self,
        schedule_id: str,
        *,
        expected_next: datetime,
        next_fire_at: datetime,
        fired: datetime | None,
        missed: int,
        last_missed_at: datetime | None,
    ) -> bool:
        query = id_query(schedule_id)
        if query is None:
            return False
        changes: dict[str, Any] = {"next_fire_at": bson_time(next_fire_at), "updated_at": now()}
        if fired is not None:
            changes["last_fired_at"] = bson_time(fired)
        if last_missed_at is not None:
            changes["last_missed_at"] = bson_time(last_missed_at)
        result = self.collection.update_one(
            {**query, "next_fire_at": bson_time(expected_next)},
            {"$set": changes, "$inc": {"missed": missed}},
        )
        return result.modified_count > 0

    def claim_firing(
        self, schedule_id: str, scheduled_for: datetime, holder: str
    ) -> ScheduleFiring | None:
        query = id_query(schedule_id)
        if query is None or self.collection.find_one(query, {"_id": 1}) is None:
            return None
        document = {
            "_id": ObjectId(),
            "schedule_id": schedule_id,
            "scheduled_for": bson_time(scheduled_for),
            "fired_at": now(),
            "status": str(FiringStatus.STARTED),
            "run_id": None,
            "execution_id": None,
            "error": "",
            "holder": holder,
        }
        try:
            self.firings_collection.insert_one(document)
        except DuplicateKeyError:
            return None
        return to_firing(document)

    def finish_firing(
        self,
        firing_id: str,
        *,
        status: FiringStatus,
        run_id: str | None = None,
        execution_id: str | None = None,
        error: str = "",
    ) -> ScheduleFiring | None:
        query = id_query(firing_id)
        if query is None:
            return None
        document = self.firings_collection.find_one_and_update(
            query,
            {
                "$set": {
                    "status": str(status),
                    "run_id": run_id,
                    "execution_id": execution_id,
                    "error": error,
                }
            },
            return_document=ReturnDocument.AFTER,
        )
        return to_firing(document) if document else None

    def firings(self, schedule_id: str, limit: int = 100) -> list[ScheduleFiring]:
        found = self.firings_collection.find(
            {"schedule_id": schedule_id}, sort=[("scheduled_for", DESCENDING)], limit=limit
        )
        return [to_firing(document) for document in found]
