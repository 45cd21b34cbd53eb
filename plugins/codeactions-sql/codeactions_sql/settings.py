"""What codeactions-sql declares through the ``codeactions_settings`` hook: the DB_TYPE
values its store understands, and the DB_URI each needs (it reads only core settings)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import urlsplit

from codeactions_core.errors import ConfigurationError
from codeactions_core.settings import PREFIX, PluginSettings, Settings, StoreType

STORE_TYPES = (
    StoreType("sqlite", uri_schemes=("sqlite",)),
    StoreType("postgres", uri_schemes=("postgres", "postgresql"), aliases=("postgresql", "pg")),
)
DB_TYPES = frozenset(store.name for store in STORE_TYPES)


@dataclass(frozen=True)
class SqlSettings(PluginSettings):
    """Settings of codeactions-sql (the SQLite and PostgreSQL store): the core's `DB_*`."""

    store_types: ClassVar[tuple[StoreType, ...]] = STORE_TYPES

    def validate(self, settings: Settings) -> None:
        """A `DB_URI` of the store's own scheme."""
        expected = next(
            (store.uri_schemes for store in STORE_TYPES if store.name == settings.db_type), ()
        )
        scheme = urlsplit(settings.db_uri).scheme
        if settings.db_uri and expected and scheme not in expected:
            raise ConfigurationError(
                f"{PREFIX}DB_URI: a {settings.db_type} store needs a "
                f"{expected[0]}:// URI, got scheme {scheme!r}"
            )
