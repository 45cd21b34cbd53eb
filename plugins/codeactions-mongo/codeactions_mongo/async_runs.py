"""Async run records and project signing keys in the ``async_runs`` and
``project_signing_keys`` collections, keyed by ``_id`` = run id / project uuid
(so the always-present ``_id`` index is all they need: no schema version).

Claiming an attempt is one ``find_one_and_update`` matching ``attempts < cap``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pymongo import ReturnDocument

from codeactions_core.store import AsyncRun, CallbackState, SigningKey
from codeactions_mongo.errors import mongo_errors_as_store_errors
from codeactions_mongo.fields import now, read_time

ASYNC_RUNS = "async_runs"
SIGNING_KEYS = "project_signing_keys"


@mongo_errors_as_store_errors
class MongoAsyncRuns:
    def __init__(self, runs: Any, keys: Any) -> None:
        self.runs = runs
        self.keys = keys

    def create(self, new: AsyncRun) -> AsyncRun:
        moment = now()
        document = {
            "_id": new.run_id,
            "project_uuid": new.project_uuid,
            "callback_url": new.callback_url,
            "via": new.via,
            "attempts": new.attempts,
            "redelivered": new.redelivered,
            "worker": new.worker,
            "callback_state": new.callback_state,
            "callback_attempts": new.callback_attempts,
            "callback_error": new.callback_error,
            "created_at": moment,
            "updated_at": moment,
        }
        self.runs.insert_one(document)
        return record(document)

    def get(self, run_id: str) -> AsyncRun | None:
        if not isinstance(run_id, str):
            return None
        document = self.runs.find_one({"_id": run_id})
        return None if document is None else record(document)

    def claim(
        self, run_id: str, worker: str, *, redelivered: bool, max_attempts: int
    ) -> AsyncRun | None:
        changes: dict[str, Any] = {"worker": worker, "updated_at": now()}
        if redelivered:
            changes["redelivered"] = True
        document = self.runs.find_one_and_update(
            {"_id": run_id, "attempts": {"$lt": max_attempts}},
            {"$inc": {"attempts": 1}, "$set": changes},
            return_document=ReturnDocument.AFTER,
        )
        return record(document) if document is not None else self.get(run_id)

    def set_callback(
        self, run_id: str, state: str, attempts: int, error: str = ""
    ) -> AsyncRun | None:
        document = self.runs.find_one_and_update(
            {"_id": run_id},
            {
                "$set": {
                    "callback_state": state,
                    "callback_attempts": attempts,
                    "callback_error": error,
                    "updated_at": now(),
                }
            },
            return_document=ReturnDocument.AFTER,
        )
        return None if document is None else record(document)

    def signing_key(self, project_uuid: str) -> SigningKey | None:
        document = self.keys.find_one({"_id": project_uuid})
        if document is None:
            return None
        return SigningKey(project_uuid, str(document["key"]), read_time(document, "created_at"))

    def rotate_signing_key(self, project_uuid: str, key: str) -> SigningKey:
        moment = now()
        self.keys.replace_one(
            {"_id": project_uuid}, {"key": key, "created_at": moment}, upsert=True
        )
        return SigningKey(project_uuid, key, read_time({"created_at": moment}, "created_at"))


def record(document: Mapping[str, Any]) -> AsyncRun:
    return AsyncRun(
        run_id=str(document["_id"]),
        project_uuid=str(document.get("project_uuid", "")),
        callback_url=str(document.get("callback_url", "")),
        via=str(document.get("via", "server")),
        attempts=int(document.get("attempts", 0)),
        redelivered=bool(document.get("redelivered", False)),
        worker=str(document.get("worker", "")),
        callback_state=str(document.get("callback_state", CallbackState.NONE)),
        callback_attempts=int(document.get("callback_attempts", 0)),
        callback_error=str(document.get("callback_error", "")),
        created_at=read_time(document, "created_at"),
        updated_at=read_time(document, "updated_at"),
    )
