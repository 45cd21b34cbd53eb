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
    version = peewee.IntegerField(null=True)

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
    owner = peewee.TextField(null=True)
    lease_expires_at = UTCDateTime(null=True)
    code_version = peewee.IntegerField(null=True)

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


class FlowDefinitionRow(Row):
    name = peewee.TextField()
    description = peewee.TextField(default="")
    project_uuid = peewee.CharField(max_length=255)
    created_by = peewee.TextField(default="")
    is_active = peewee.BooleanField(default=True)

    class Meta:
        table_name = "flow_definitions"


class FlowVersionRow(peewee.Model):
    id = UUIDText(primary_key=True)
    flow_definition_id = UUIDText()
    version_number = peewee.IntegerField()
    steps = JSONValue()
    status = peewee.CharField(max_length=20)
    published_at = UTCDateTime(null=True)
    created_by = peewee.TextField(default="")
    created_at = UTCDateTime()
    change_notes = peewee.TextField(default="")

    class Meta:
        table_name = "flow_versions"


class FlowExecutionRow(peewee.Model):
    id = UUIDText(primary_key=True)
    flow_definition_id = UUIDText()
    flow_version_id = UUIDText()
    lead_id = peewee.TextField(null=True)
    status = peewee.CharField(max_length=20)
    logs = JSONValue()
    result = JSONValue()
    error_message = peewee.TextField(default="")
    started_at = UTCDateTime(null=True)
    finished_at = UTCDateTime(null=True)
    executed_by = peewee.TextField(default="")
    context = JSONValue()
    created_at = UTCDateTime()
    next_step = peewee.IntegerField(default=0)
    revision = peewee.BigIntegerField(default=0)
    lease_owner = peewee.TextField(null=True)
    lease_expires_at = UTCDateTime(null=True)
    resume_at = UTCDateTime(null=True)
    cancel_requested = peewee.BooleanField(default=False)

    class Meta:
        table_name = "flow_executions"


class SecretRow(peewee.Model):
    project_uuid = peewee.CharField(max_length=255)
    name = peewee.CharField(max_length=128)
    ciphertext = peewee.TextField()
    created_at = UTCDateTime()
    updated_at = UTCDateTime()

    class Meta:
        table_name = "project_secrets"
        primary_key = peewee.CompositeKey("project_uuid", "name")


class CodeVersionRow(peewee.Model):
    id = UUIDText(primary_key=True)
    code_id = UUIDText()
    number = peewee.IntegerField()
    source = peewee.TextField()
    language = peewee.CharField(max_length=50)
    timeout = peewee.IntegerField()
    sha256 = peewee.CharField(max_length=64)
    author = peewee.TextField(default="")
    note = peewee.TextField(default="")
    created_at = UTCDateTime()

    class Meta:
        table_name = "code_versions"


class ScheduleRow(Row):
    target_type = peewee.CharField(max_length=10)
    target_id = UUIDText()
    project_uuid = peewee.CharField(max_length=255)
    cron = peewee.TextField()
    timezone = peewee.TextField()
    params = JSONValue()
    variables = JSONValue()
    version = peewee.IntegerField(null=True)
    created_by = peewee.TextField(default="")
    next_fire_at = UTCDateTime()
    last_fired_at = UTCDateTime(null=True)
    missed = peewee.BigIntegerField(default=0)
    last_missed_at = UTCDateTime(null=True)

    class Meta:
        table_name = "schedules"


class ScheduleFiringRow(peewee.Model):
    id = UUIDText(primary_key=True)
    schedule_id = UUIDText()
    scheduled_for = UTCDateTime()
    fired_at = UTCDateTime()
    status = peewee.CharField(max_length=10)
    run_id = UUIDText(null=True)
    execution_id = UUIDText(null=True)
    error = peewee.TextField(default="")
    holder = peewee.TextField(default="")

    class Meta:
        table_name = "schedule_firings"


TABLES = {
    "codes": CodeRow,
    "runs": RunRow,
    "logs": LogRow,
    "libs": LibRow,
    "permissions": PermissionRow,
    "projects": ProjectRow,
    "flow_definitions": FlowDefinitionRow,
    "flow_versions": FlowVersionRow,
    "flow_executions": FlowExecutionRow,
    "secrets": SecretRow,
    "code_versions": CodeVersionRow,
    "schedules": ScheduleRow,
    "schedule_firings": ScheduleFiringRow,
}


def bind_models(database: peewee.Database) -> SimpleNamespace:
    """Subclasses of every model bound to ``database`` (attribute per key of TABLES)."""
    bound = {}
    for key, model in TABLES.items():
        meta = type("Meta", (), {"database": database, "table_name": model._meta.table_name})
        bound[key] = type(model.__name__, (model,), {"Meta": meta, "__module__": __name__})
    return SimpleNamespace(**bound)
