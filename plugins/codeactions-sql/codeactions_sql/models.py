"""The tables, as peewee models. The migrations own the schema; these only map it.

Models are bound per store (``bind_models``) so stores on different databases
can live in one process.
"""

from __future__ import annotations

from types import SimpleNamespace

import peewee

from codeactions_sql.fields import JSONValue, UTCDateTime, UUIDText


class Row(peewee.Model):
    id = UUIDText(primary_key=True)
    created_at = UTCDateTime()
    updated_at = UTCDateTime()


class CodeRow(Row):
    mongo_object_id = peewee.TextField(null=True)
    name = peewee.CharField(max_length=255)
    type = peewee.CharField(max_length=50)
    source = peewee.TextField()
    language = peewee.CharField(max_length=50)
    url = peewee.CharField(max_length=512, null=True)
    project_uuid = peewee.CharField(max_length=255)
    timeout = peewee.IntegerField(default=60)

    class Meta:
        table_name = "codes"


class RunRow(Row):
    mongo_object_id = peewee.TextField(null=True)
    code_id = UUIDText()
    code_mongo_id = peewee.TextField(null=True)
    status = peewee.CharField(max_length=50)
    result = peewee.TextField(null=True)
    extra = JSONValue(null=True)
    params = JSONValue(null=True)
    body = peewee.TextField(null=True)
    headers = JSONValue(null=True)

    class Meta:
        table_name = "coderuns"


class LogRow(Row):
    mongo_object_id = peewee.TextField(null=True)
    run_id = UUIDText()
    code_id = UUIDText()
    seq = peewee.IntegerField(default=0)
    type = peewee.CharField(max_length=10)
    content = peewee.TextField()

    class Meta:
        table_name = "codelogs"


class LibRow(Row):
    mongo_object_id = peewee.TextField(null=True)
    name = peewee.CharField(max_length=255)
    language = peewee.CharField(max_length=50)

    class Meta:
        table_name = "codelibs"


class PermissionRow(Row):
    mongo_object_id = peewee.TextField(null=True)
    project_uuid = peewee.CharField(max_length=255)
    email = peewee.CharField(max_length=255)
    role = peewee.IntegerField()

    class Meta:
        table_name = "user_permissions"


class ProjectRow(Row):
    mongo_object_id = peewee.TextField(null=True)
    uuid = peewee.CharField(max_length=255)
    name = peewee.CharField(max_length=255)
    authorizations = JSONValue(null=True)

    class Meta:
        table_name = "projects"


TABLES = {
    "codes": CodeRow,
    "runs": RunRow,
    "logs": LogRow,
    "libs": LibRow,
    "permissions": PermissionRow,
    "projects": ProjectRow,
}


def bind_models(database: peewee.Database) -> SimpleNamespace:
    """Subclasses of every model bound to ``database`` (attribute per key of TABLES)."""
    bound = {}
    for key, model in TABLES.items():
        meta = type("Meta", (), {"database": database, "table_name": model._meta.table_name})
        bound[key] = type(model.__name__, (model,), {"Meta": meta, "__module__": __name__})
    return SimpleNamespace(**bound)
