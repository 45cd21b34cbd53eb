"""What a store provides for flows (``store.flows``); ``codeactions_core.testing.
flow_store_contract`` is the suite every implementation must pass.

Like the other repositories, it answers ``None`` for ids it does not know
(including strings that are not ids) and never raises for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from codeactions_core.flows.model import (
    ExecutionStatus,
    FlowDefinition,
    FlowExecution,
    FlowVersion,
    NewExecution,
    NewFlow,
    VersionStatus,
)


class FlowRepository(Protocol):
    # -- definitions ----------------------------------------------------------------------

    def create_definition(self, new: NewFlow) -> FlowDefinition: ...

    def get_definition(self, flow_id: str) -> FlowDefinition | None: ...

    def list_definitions(
        self, project_uuid: str, *, active_only: bool = False
    ) -> list[FlowDefinition]:
        """A project's flows, newest first."""

    def update_definition(
        self,
        flow_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        is_active: bool | None = None,
    ) -> FlowDefinition | None:
        """Change the given fields (None keeps one) and ``updated_at``."""

    # -- versions -------------------------------------------------------------------------

    def create_version(
        self,
        flow_id: str,
        steps: list[dict[str, Any]],
        *,
        change_notes: str = "",
        created_by: str = "",
    ) -> FlowVersion:
        """A new draft numbered one above the flow's highest (safe under concurrency).
        NotFound when there is no such flow."""

    def get_version(self, flow_id: str, version_number: int) -> FlowVersion | None: ...

    def get_version_by_id(self, version_id: str) -> FlowVersion | None: ...

    def list_versions(self, flow_id: str) -> list[FlowVersion]:
        """A flow's versions, highest number first."""

    def published_version(self, flow_id: str) -> FlowVersion | None: ...

    def update_draft(
        self,
        flow_id: str,
        version_number: int,
        *,
        steps: list[dict[str, Any]] | None = None,
        change_notes: str | None = None,
    ) -> FlowVersion | None:
        """Change a draft. None when there is no such version; Conflict (never a write)
        when it is not a draft any more, decided atomically."""

    def publish(
        self, flow_id: str, version_number: int, *, allowed_from: Sequence[VersionStatus]
    ) -> FlowVersion | None:
        """In one transaction: the flow's published version (if another) becomes archived,
        this one published with ``published_at`` now. None when there is no such version;
        Conflict when its status is not in ``allowed_from``."""

    # -- executions -----------------------------------------------------------------------

    def create_execution(self, new: NewExecution) -> FlowExecution:
        """A pending execution, due at once (``resume_at`` = its ``created_at``). NotFound
        unless ``flow_version_id`` is a version of ``flow_definition_id``."""

    def get_execution(self, execution_id: str) -> FlowExecution | None: ...

    def list_executions(
        self,
        flow_id: str,
        *,
        status: ExecutionStatus | None = None,
        lead_id: str | None = None,
        version_id: str | None = None,
        limit: int = 100,
    ) -> list[FlowExecution]:
        """A flow's executions, newest first."""

    def claim(
        self, execution_id: str, owner: str, lease_until: datetime, now: datetime
    ) -> FlowExecution | None:
        """Take the execution for ``owner`` until ``lease_until``, atomically: only when it is
        not terminal and nobody holds a lease that is still valid at ``now`` (valid: set, and
        ``lease_expires_at`` after ``now``). Returns it (``revision`` incremented) or None.
        Not re-entrant: the holder itself cannot claim again while its lease is valid."""

    def renew(self, execution_id: str, owner: str, lease_until: datetime) -> bool:
        """Extend ``owner``'s lease; False when it is not the holder any more (fenced by
        owner, as ``save``)."""

    def save(self, execution: FlowExecution, owner: str, *, release: bool) -> FlowExecution | None:
        """Write the execution's state (status, logs, result, error_message, started_at,
        finished_at, next_step, resume_at) only while ``owner`` holds its lease
        (fencing); ``release`` gives the lease up. None when the lease was lost.

        A pending cancellation is never overwritten: ``cancel_requested`` is kept as stored.

        Fencing is by owner and claim: the write applies while the stored ``lease_owner`` is
        ``owner`` and the stored ``revision`` is ``execution.revision`` (the one its claim
        returned), even past ``lease_expires_at`` as long as nobody claimed the execution
        since (its state is then still the latest). A new claim (even by the same owner)
        or a cancellation that finishes it fences the old claim's writes out."""

    def request_cancel(self, execution_id: str, now: datetime) -> FlowExecution | None:
        """Cancel: a terminal execution is returned unchanged; one nobody holds becomes
        ``cancelled`` (``finished_at`` now) at once; one a worker holds gets
        ``cancel_requested`` for that worker to honour. Atomic. None for unknown ids.

        Cancelling at once also clears an expired lease (fencing its old holder out);
        ``cancel_requested`` is set in both cases, recording that a cancel was asked for."""

    def due_executions(self, due_by: datetime, now: datetime, limit: int) -> list[str]:
        """Ids of at most ``limit`` executions to drive: not terminal, ``resume_at`` at or
        before ``due_by``, and no lease still valid at ``now``; the longest due first."""
