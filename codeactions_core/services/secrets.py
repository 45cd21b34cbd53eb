"""Per-project secrets: stored encrypted, handed to the project's own runs only.

Moderators put and delete them; listing shows names and timestamps, never a value.
A run of a code gets its project's secrets in the job document it sends into the
sandbox (never through the environment), and whatever the run reports back is
masked (``codeactions_core.services.secret_masking``) before it is stored or answered.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

from codeactions_core.errors import InvalidInput, NotFound, Unavailable
from codeactions_core.model import ProjectSecret
from codeactions_core.secret_box import NOT_CONFIGURED, SecretBox, UndecryptableSecret
from codeactions_core.store import SecretRepository

log = logging.getLogger(__name__)

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
MIN_VALUE = 4
"""Characters a value needs at least: a shorter one could not be masked without masking
ordinary text (CI systems set such a floor too)."""
MAX_VALUE = 64 * 1024
"""Bytes a value may have at most (UTF-8)."""


def check_name(name: str) -> str:
    if "/" in name:
        raise InvalidInput(
            f"secret name {name[:200]!r} contains '/': names are letters, digits and _"
        )
    if not NAME.fullmatch(name):
        raise InvalidInput(
            f"secret name {name[:200]!r} is invalid: 1-128 letters, digits and _, "
            "not starting with a digit (like an environment variable name)"
        )
    return name


def check_value(value: str) -> str:
    if len(value) < MIN_VALUE:
        raise InvalidInput(
            f"a secret value needs at least {MIN_VALUE} characters, so that masking it in "
            "logs and results cannot garble ordinary text"
        )
    if len(value.encode("utf-8", errors="replace")) > MAX_VALUE:
        raise InvalidInput(f"a secret value may have at most {MAX_VALUE} bytes")
    if "\x00" in value:
        raise InvalidInput("a secret value may not contain a NUL character")
    return value


@dataclass(frozen=True)
class Rotation:
    """What ``codeactions secrets rotate`` did."""

    rotated: int
    changed_meanwhile: int
    undecryptable: list[str]
    """``project/name`` of each secret no configured key decrypts."""


class SecretService:
    def __init__(self, repository: SecretRepository, keys: Sequence[str]) -> None:
        self._repository = repository
        self._box = SecretBox(keys) if keys else None

    @property
    def configured(self) -> bool:
        return self._box is not None

    def _require_box(self) -> SecretBox:
        if self._box is None:
            raise Unavailable(NOT_CONFIGURED)
        return self._box

    def put(self, project_uuid: str, name: str, value: str) -> ProjectSecret:
        box = self._require_box()
        return self._repository.put(project_uuid, check_name(name), box.encrypt(check_value(value)))

    def list(self, project_uuid: str) -> list[ProjectSecret]:
        return self._repository.list_by_project(project_uuid)

    def delete(self, project_uuid: str, name: str) -> None:
        if not self._repository.delete(project_uuid, check_name(name)):
            raise NotFound(f"project {project_uuid!r} has no secret {name!r}")

    def for_run(self, project_uuid: str) -> dict[str, str]:
        """The project's secrets by name, decrypted, for one run; {} without a key. A secret
        no key decrypts is left out (and logged by name)."""
        if self._box is None:
            return {}
        values = {}
        for secret in self._repository.list_by_project(project_uuid):
            try:
                values[secret.name] = self._box.decrypt(secret.ciphertext)
            except UndecryptableSecret as exc:
                log.error(
                    "secret %s of project %s is left out of the run: %s",
                    secret.name,
                    project_uuid,
                    exc,
                )
        return values

    def rotate(self) -> Rotation:
        """Encrypt every stored secret with the newest key."""
        box = self._require_box()
        rotated = changed = 0
        undecryptable = []
        for secret in self._repository.all():
            try:
                token = box.rotate(secret.ciphertext)
            except UndecryptableSecret:
                undecryptable.append(f"{secret.project_uuid}/{secret.name}")
                continue
            swapped = self._repository.replace_ciphertext(
                secret.project_uuid, secret.name, secret.ciphertext, token
            )
            if swapped:
                rotated += 1
            else:
                changed += 1  # put (with the newest key) or deleted since it was read
        return Rotation(rotated, changed, undecryptable)
