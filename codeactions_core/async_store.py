"""What a store keeps about async runs and the projects' callback signing keys.

An async run is an ordinary CodeRun (``coderuns``) plus one :class:`AsyncRun`
record: who asked for a callback, how often a worker took the run (``attempts``)
and whether the broker handed it over again after a worker died
(``redelivered``), and how its callback went. PostgreSQL and SQLite keep them in
the tables of migration 000014 (``async_runs``, ``project_signing_keys``);
MongoDB in the collections of the same names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from codeactions_core.model import rfc3339, utcnow


class CallbackState:
    """Where a run's callback stands."""

    NONE = "none"
    """No callback_url was given."""
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
    """Every attempt failed (or the URL became unreachable by policy)."""


@dataclass
class AsyncRun:
    run_id: str
    project_uuid: str
    callback_url: str = ""
    via: str = "server"
    """Who holds it while it is queued: ``broker`` (a RabbitMQ queue, for the workers: the
    abandoned-run sweep leaves it alone while queued) or ``server`` (a server's own pool)."""
    attempts: int = 0
    """How many times a worker (or the server's pool) started the run."""
    redelivered: bool = False
    """The broker handed the run over again (the worker holding it died, or stopped before
    starting it); ``attempts`` tells whether it had started."""
    worker: str = ""
    """Who took it last: ``host:pid`` of the worker or server process."""
    callback_state: str = CallbackState.NONE
    callback_attempts: int = 0
    callback_error: str = ""
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "project_uuid": self.project_uuid,
            "callback_url": self.callback_url or None,
            "via": self.via,
            "attempts": self.attempts,
            "redelivered": self.redelivered,
            "worker": self.worker or None,
            "callback": {
                "state": self.callback_state,
                "attempts": self.callback_attempts,
                "error": self.callback_error or None,
            },
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
        }


@dataclass(frozen=True)
class SigningKey:
    project_uuid: str
    key: str
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        """What may be shown about the key: never the key itself."""
        return {"project_uuid": self.project_uuid, "created_at": rfc3339(self.created_at)}


class AsyncRunRepository(Protocol):
    def create(self, record: AsyncRun) -> AsyncRun: ...

    def get(self, run_id: str) -> AsyncRun | None:
        """None for an unknown id (or a string that is not an id)."""

    def claim(
        self, run_id: str, worker: str, *, redelivered: bool, max_attempts: int
    ) -> AsyncRun | None:
        """Count one more attempt by ``worker`` unless ``max_attempts`` were made already, in
        one atomic step; ``redelivered`` is kept once true. The record after the step (attempts
        unchanged when the cap was reached); None for an unknown run."""

    def set_callback(
        self, run_id: str, state: str, attempts: int, error: str = ""
    ) -> AsyncRun | None:
        """Record how the callback went."""

    def signing_key(self, project_uuid: str) -> SigningKey | None:
        """The project's callback signing key; None when it has none yet."""

    def rotate_signing_key(self, project_uuid: str, key: str) -> SigningKey:
        """Store ``key`` as the project's signing key, replacing any older one."""
