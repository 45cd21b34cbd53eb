"""What an old deployment's environment relies on: the old HOST forms, and variables accepted
that change nothing here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from codeactions_core.settings.parsing import port
from codeactions_core.settings.spec import PREFIX

UNUSED_SETTINGS = (PREFIX + "MEMORY_RESERVATION",)
"""Old service's variables accepted for compatibility that change nothing here (whatever
their value): no setting reads them, so they are named among the ignored at start."""


def legacy_defaults(values: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults an old deployment relies on: HOST ``:``/``:PORT`` as all interfaces (the
    store from DB_URI's scheme: ``resolve_store_type``; the plugins': their own)."""
    derived: dict[str, Any] = {}
    host = values.get("host")
    if host is not None and host.startswith(":"):
        derived["host"] = "0.0.0.0"
        if "port" not in values and host[1:]:
            derived["port"] = port(host[1:])
    return derived
