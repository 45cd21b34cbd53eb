"""What codeactions-sql declares through the ``codeactions_settings`` hook: the DB_TYPE
values its store understands, and the DB_URI each needs (it reads only core settings)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import urlsplit

from codeactions_core.errors import ConfigurationError
from codeactions_core.settings import PREFIX, PluginSettings, Settings

URI_SCHEMES = {"sqlite": ("sqlite",), "postgres": ("postgres", "postgresql")}


@dataclass(frozen=True)
class SqlSettings(PluginSettings):
    """Settings of codeactions-sql (the SQLite and PostgreSQL store): the core's `DB_*`."""

    db_types: ClassVar[tuple[str, ...]] = tuple(URI_SCHEMES)

    def validate(self, settings: Settings) -> None:
        """A `DB_URI` of the store's own scheme."""
        expected = URI_SCHEMES.get(settings.db_type)
        scheme = urlsplit(settings.db_uri).scheme
        if settings.db_uri and expected and scheme not in expected:
            raise ConfigurationError(
                f"{PREFIX}DB_URI: a {settings.db_type} store needs a "
                f"{expected[0]}:// URI, got scheme {scheme!r}"
            )
