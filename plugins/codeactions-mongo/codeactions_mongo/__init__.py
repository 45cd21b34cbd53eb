"""codeactions-mongo: the MongoDB store, compatible with the old service's collections."""

from __future__ import annotations

from codeactions_core import hookimpl
from codeactions_core.settings import Settings
from codeactions_mongo.store import MongoStore

__all__ = ["MongoStore", "codeactions_store"]


@hookimpl(trylast=True)
def codeactions_store(settings: Settings) -> MongoStore | None:
    if settings.db_type == "mongodb":
        return MongoStore.from_settings(settings)
    return None
