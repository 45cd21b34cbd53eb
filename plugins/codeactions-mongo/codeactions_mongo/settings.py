"""The settings of codeactions-mongo, declared through the ``codeactions_settings`` hook."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

from codeactions_core.settings import PluginSettings, Settings, StoreType, setting

STORE_TYPE = StoreType("mongodb", uri_schemes=("mongodb", "mongodb+srv"), aliases=("mongo",))


@dataclass(frozen=True)
class MongoSettings(PluginSettings):
    """Settings of codeactions-mongo (the MongoDB store, `DB_TYPE=mongodb`):"""

    store_types: ClassVar[tuple[StoreType, ...]] = (STORE_TYPE,)

    mongo_db_uri: str = setting(
        "mongodb://localhost:27017", "MongoDB URI (with `DB_TYPE=mongodb`).", secret=True
    )
    mongo_db_name: str = setting("code-actions", "MongoDB database name.")

    @classmethod
    def legacy_defaults(cls, values: Mapping[str, Any], settings: Settings) -> dict[str, Any]:
        """MONGO_DB_URI unset: a `mongodb://` DB_URI (the old service's one variable)."""
        scheme = urlsplit(settings.db_uri).scheme.lower()
        if scheme in STORE_TYPE.uri_schemes and "mongo_db_uri" not in values:
            return {"mongo_db_uri": settings.db_uri}
        return {}
