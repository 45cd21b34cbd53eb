"""Project secrets on the ``project_secrets`` table (PostgreSQL and SQLite alike)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import peewee

from codeactions_core.model import ProjectSecret, utcnow
from codeactions_sql.repositories import database_errors_as_store_errors


def to_secret(row: Any) -> ProjectSecret:
    return ProjectSecret(
        project_uuid=row.project_uuid,
        name=row.name,
        ciphertext=row.ciphertext,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


@database_errors_as_store_errors
class SqlSecrets:
    def __init__(self, model: type[peewee.Model]) -> None:
        self.model = model

    def _key(self, project_uuid: str, name: str) -> Any:
        return (self.model.project_uuid == project_uuid) & (self.model.name == name)

    def put(self, project_uuid: str, name: str, ciphertext: str) -> ProjectSecret:
        now = utcnow()
        self.model.insert(
            project_uuid=project_uuid,
            name=name,
            ciphertext=ciphertext,
            created_at=now,
            updated_at=now,
        ).on_conflict(
            conflict_target=[self.model.project_uuid, self.model.name],
            update={self.model.ciphertext: ciphertext, self.model.updated_at: now},
        ).execute()
        return to_secret(self.model.get(self._key(project_uuid, name)))

    def list_by_project(self, project_uuid: str) -> list[ProjectSecret]:
        query = self.model.select().where(self.model.project_uuid == project_uuid)
        return [to_secret(row) for row in query.order_by(self.model.name)]

    def delete(self, project_uuid: str, name: str) -> bool:
        return self.model.delete().where(self._key(project_uuid, name)).execute() > 0

    def all(self) -> Iterator[ProjectSecret]:
        query = self.model.select().order_by(self.model.project_uuid, self.model.name)
        return iter([to_secret(row) for row in query])

    def replace_ciphertext(self, project_uuid: str, name: str, old: str, new: str) -> bool:
        changed = self.model.update(ciphertext=new).where(
            self._key(project_uuid, name) & (self.model.ciphertext == old)
        )
        return changed.execute() > 0
