"""codeactions-mongo: the MongoDB store, compatible with the old service's collections."""

from __future__ import annotations

from codeactions_core import hookimpl
from codeactions_core.settings import Settings
from codeactions_mongo.settings import STORE_TYPE, MongoSettings
from codeactions_mongo.store import MongoStore

__all__ = ["MongoSettings", "MongoStore", "codeactions_settings", "codeactions_store"]


@hookimpl(trylast=True)
def codeactions_settings() -> list[type[MongoSettings]]:
    return [MongoSettings]


@hookimpl(trylast=True)
def codeactions_store(settings: Settings) -> MongoStore | None:
    if settings.db_type == STORE_TYPE.name:
        return MongoStore.from_settings(settings)
    return None
