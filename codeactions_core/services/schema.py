"""The gate between a database's schema and the code about to use it."""

from __future__ import annotations

import logging

from codeactions_core.errors import SchemaBehind
from codeactions_core.store import SchemaStatus, Store

log = logging.getLogger(__name__)


def ensure_schema_ready(store: Store) -> SchemaStatus:
    """Let a process start only on an up-to-date schema.

    Embedded stores (SQLite) are migrated here; others must be migrated by an
    operator with ``codeactions migrate``.
    """
    status = store.schema_status()
    if status.dirty:
        raise SchemaBehind(
            f"the {store.kind} schema is dirty at version {status.current}: a migration failed "
            f"half-way. Repair the database, then run `codeactions migrate --force "
            f"{status.current}` and `codeactions migrate`"
        )
    if status.behind and store.auto_migrate:
        applied = store.migrate()
        log.info("migrated the %s schema: applied %s", store.kind, applied)
        return store.schema_status()
    if status.behind:
        raise SchemaBehind(
            f"the {store.kind} schema is at version {status.current} but this codeactions needs "
            f"version {status.latest}: run `codeactions migrate` first"
        )
    if status.current > status.latest:
        log.warning(
            "the %s schema is at version %s, newer than this codeactions knows (%s)",
            store.kind,
            status.current,
            status.latest,
        )
    return status
