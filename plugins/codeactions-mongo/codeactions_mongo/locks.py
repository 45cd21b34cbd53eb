"""Scheduler locks in the ``scheduler_locks`` collection: one document per lock,
keyed by ``_id`` = the lock's name, so the always-present unique ``_id`` index
is what makes taking a lock atomic (no schema version needed).

Taking a lock is one upsert that matches only an expired document: when the
lock is held, the upsert tries to insert a second document with the same
``_id`` and the server refuses it. Expiry is judged by this host's clock.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pymongo.errors import DuplicateKeyError

from codeactions_mongo.errors import mongo_errors_as_store_errors
from codeactions_mongo.fields import now

LOCKS = "scheduler_locks"


@mongo_errors_as_store_errors
class MongoLocks:
    def __init__(self, collection: Any) -> None:
        self.collection = collection

    def try_acquire(self, name: str, holder: str, ttl: timedelta) -> bool:
        moment = now()
        try:
            self.collection.update_one(
                {"_id": name, "expires_at": {"$lte": moment}},
                {"$set": {"holder": holder, "expires_at": moment + ttl}},
                upsert=True,
            )
        except DuplicateKeyError:  # held and unexpired
            return False
        return True

    def release(self, name: str, holder: str) -> bool:
        return self.collection.delete_one({"_id": name, "holder": holder}).deleted_count > 0
