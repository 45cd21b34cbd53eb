"""Project secrets in the ``project_secrets`` collection: one document per secret keyed by
``_id`` = ``{project_uuid, name}``, so the always-present unique ``_id`` index makes a
name unique within its project (no schema version needed). The value is only ever
stored encrypted (``ciphertext``, a Fernet token)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from codeactions_core.model import ProjectSecret
from codeactions_mongo.errors import mongo_errors_as_store_errors
from codeactions_mongo.fields import now, read_time

SECRETS = "project_secrets"


def key(project_uuid: str, name: str) -> dict[str, str]:
    return {"_id": {"project_uuid": project_uuid, "name": name}}


def to_secret(document: Mapping[str, Any]) -> ProjectSecret:
    return ProjectSecret(
        project_uuid=document["_id"]["project_uuid"],
        name=document["_id"]["name"],
        ciphertext=document["ciphertext"],
        created_at=read_time(document, "created_at"),
        updated_at=read_time(document, "updated_at"),
    )


@mongo_errors_as_store_errors
class MongoSecrets:
    def __init__(self, collection: Any) -> None:
        self.collection = collection

    def put(self, project_uuid: str, name: str, ciphertext: str) -> ProjectSecret:
        moment = now()
        update = {
            "$set": {"ciphertext": ciphertext, "updated_at": moment, "project_uuid": project_uuid},
            "$setOnInsert": {"created_at": moment},
        }
        for _ in range(2):  # a concurrent first put inserted it: the second try is an update
            try:
                document = self.collection.find_one_and_update(
                    key(project_uuid, name),
                    update,
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                )
                return to_secret(document)
            except DuplicateKeyError:
                continue
        raise DuplicateKeyError("the secret was written concurrently")

    def list_by_project(self, project_uuid: str) -> list[ProjectSecret]:
        documents = self.collection.find({"project_uuid": project_uuid})
        return sorted((to_secret(document) for document in documents), key=lambda s: s.name)

    def delete(self, project_uuid: str, name: str) -> bool:
        return self.collection.delete_one(key(project_uuid, name)).deleted_count > 0

    def all(self) -> Iterator[ProjectSecret]:
        return iter([to_secret(document) for document in self.collection.find({})])

    def replace_ciphertext(self, project_uuid: str, name: str, old: str, new: str) -> bool:
        changed = self.collection.update_one(
            {**key(project_uuid, name), "ciphertext": old}, {"$set": {"ciphertext": new}}
        )
        return changed.modified_count > 0
