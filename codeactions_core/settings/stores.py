"""Which store DB_TYPE selects, among the store types the installed plugins declare."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from codeactions_core.errors import ConfigurationError
from codeactions_core.settings.spec import PREFIX

DEFAULT_STORE = "sqlite"
"""The store when neither DB_TYPE nor DB_URI's scheme names one: the embedded default."""


@dataclass(frozen=True)
class StoreType:
    """A DB_TYPE value a store plugin understands, declared in its PluginSettings."""

    name: str
    uri_schemes: tuple[str, ...] = ()
    """DB_URI schemes that select this store when DB_TYPE is unset (the old service's way)."""
    aliases: tuple[str, ...] = ()
    """Other spellings DB_TYPE accepts for it."""


def resolve_store_type(values: Mapping[str, Any], types: Iterable[StoreType]) -> str:
    """The store DB_TYPE names (or, unset, DB_URI's scheme selects) among the declared
    ``types``; ConfigurationError naming the installed ones when none is."""
    types = list(types)
    by_name = {name: store.name for store in types for name in (store.name, *store.aliases)}
    by_scheme = {scheme: store.name for store in types for scheme in store.uri_schemes}
    scheme = urlsplit(values.get("db_uri", "")).scheme.lower()
    requested = values.get("db_type") or by_scheme.get(scheme) or DEFAULT_STORE
    if requested not in by_name:
        choices = ", ".join(sorted({store.name for store in types})) or "none"
        raise ConfigurationError(
            f"{PREFIX}DB_TYPE: no installed plugin provides a {requested!r} store; installed "
            f"store types: {choices} (see `codeactions plugins`)"
        )
    return by_name[requested]
