"""The flow use cases: definitions, versions (draft → published → archived) and executions."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from codeactions_core.errors import CodeActionsError, Conflict, InvalidInput, NotFound
from codeactions_core.execution.runtime import RunRequest
from codeactions_core.flows.diff import diff_steps
from codeactions_core.flows.dispatch import Dispatcher
from codeactions_core.flows.engine import RunCodeFunction
from codeactions_core.flows.model import (
    ExecutionStatus,
    FlowDefinition,
    FlowExecution,
    FlowVersion,
    NewExecution,
    NewFlow,
    VersionStatus,
)
from codeactions_core.flows.registry import StepRunners
from codeactions_core.flows.steps import StepFailed
from codeactions_core.flows.store import FlowRepository
from codeactions_core.model import RunStatus, utcnow
from codeactions_core.services.codes import CodeService
from codeactions_core.services.runs import RunService

MAX_NAME = 255
MAX_DESCRIPTION = 10_000
MAX_NOTES = 10_000
MAX_LIST = 1000
WAIT_POLL_SECONDS = (0.005, 0.05)
"""``?wait=true`` polls the store first after 5 ms, the delay doubling up to 50 ms."""
RUNNABLE_VERSIONS = (VersionStatus.PUBLISHED, VersionStatus.ARCHIVED)


def text_field(
    data: Mapping[str, Any], name: str, limit: int, *, required: bool = False
) -> str | None:
    value = data.get(name)
    if value is None or (isinstance(value, str) and not value.strip() and not required):
        if required:
            raise InvalidInput(f"{name} is required")
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string")
    value = value.strip()
    if required and not value:
        raise InvalidInput(f"{name} is required")
    if len(value) > limit:
        raise InvalidInput(f"{name} must be at most {limit} characters")
    return value


def bool_field(data: Mapping[str, Any], name: str) -> bool | None:
    value = data.get(name)
    if value is None or isinstance(value, bool):
        return value
    raise InvalidInput(f"{name} must be true or false")


def version_number(raw: Any, name: str = "version") -> int:
    try:
        number = int(raw)
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} must be a version number, got {raw!r}") from None
    if number < 1 or isinstance(raw, bool):
        raise InvalidInput(f"{name} must be a version number (1 or more), got {raw!r}")
    return number


def lead_of(raw: Any) -> str | None:
    """A lead id as text: an integer (Bitrix) or a string."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, str)):
        raise InvalidInput("lead_id must be a number or a string")
    text = str(raw).strip()
    if len(text) > MAX_NAME:
        raise InvalidInput(f"lead_id must be at most {MAX_NAME} characters")
    return text or None


class FlowService:
    def __init__(
        self,
        flows: FlowRepository,
        runners: StepRunners,
        dispatcher: Dispatcher,
        *,
        wait_seconds: float,
    ) -> None:
        self._flows = flows
        self._runners = runners
        self._dispatcher = dispatcher
        self._wait_seconds = wait_seconds

    def step_types(self) -> list[str]:
        """The step types the installed runners handle."""
        return self._runners.types()

    # -- definitions ----------------------------------------------------------------------

    def create_flow(self, data: Mapping[str, Any], created_by: str) -> FlowDefinition:
        return self._flows.create_definition(
            NewFlow(
                name=text_field(data, "name", MAX_NAME, required=True),
                project_uuid=text_field(data, "project_uuid", MAX_NAME, required=True),
                description=text_field(data, "description", MAX_DESCRIPTION) or "",
                created_by=created_by,
            )
        )

    def get_flow(self, flow_id: str) -> FlowDefinition:
        flow = self._flows.get_definition(flow_id)
        if flow is None:
            raise NotFound(f"flow {flow_id!r} not found")
        return flow

    def list_flows(
        self, project_uuid: str | None, *, active_only: bool = False
    ) -> list[FlowDefinition]:
        if not project_uuid:
            raise InvalidInput("project_uuid is required")
        return self._flows.list_definitions(project_uuid, active_only=active_only)

    def update_flow(self, flow_id: str, data: Mapping[str, Any]) -> FlowDefinition:
        unknown = set(data) - {"name", "description", "is_active"}
        if unknown:
            raise InvalidInput(
                f"unknown fields: {', '.join(sorted(unknown))} (name, description, is_active)"
            )
        description = data.get("description")
        if description is not None:
            description = text_field(data, "description", MAX_DESCRIPTION) or ""
        updated = self._flows.update_definition(
            flow_id,
            name=text_field(data, "name", MAX_NAME, required="name" in data),
            description=description,
            is_active=bool_field(data, "is_active"),
        )
        if updated is None:
            raise NotFound(f"flow {flow_id!r} not found")
        return updated

    # -- versions -------------------------------------------------------------------------

    def create_version(self, flow_id: str, data: Mapping[str, Any], created_by: str) -> FlowVersion:
        self.get_flow(flow_id)
        steps = self._steps(data, required=True)
        notes = text_field(data, "change_notes", MAX_NOTES) or ""
        return self._flows.create_version(flow_id, steps, change_notes=notes, created_by=created_by)

    def get_version(self, flow_id: str, number: Any) -> FlowVersion:
        version = self._flows.get_version(flow_id, version_number(number))
        if version is None:
            raise NotFound(f"flow {flow_id!r} has no version {number}")
        return version

    def list_versions(self, flow_id: str) -> list[FlowVersion]:
        self.get_flow(flow_id)
        return self._flows.list_versions(flow_id)

    def update_draft(self, flow_id: str, number: Any, data: Mapping[str, Any]) -> FlowVersion:
        current = self.get_version(flow_id, number)
        if current.status is not VersionStatus.DRAFT:
            raise Conflict(self._immutable(current))
        steps = self._steps(data, required=False)
        notes = text_field(data, "change_notes", MAX_NOTES) if "change_notes" in data else None
        updated = self._flows.update_draft(
            flow_id, current.version_number, steps=steps, change_notes=notes
        )
        if updated is None:
            raise NotFound(f"flow {flow_id!r} has no version {number}")
        return updated

    def publish(self, flow_id: str, number: Any) -> FlowVersion:
        """A draft becomes the published version; the one published before is archived."""
        version = self.get_version(flow_id, number)
        if version.status is not VersionStatus.DRAFT:
            raise Conflict(
                f"version {version.version_number} is {version.status}: only a draft can be "
                "published (use rollback to publish an archived version again)"
            )
        self._runners.validate_steps(version.steps)  # runners may have changed since it was saved
        return self._publish(flow_id, version, (VersionStatus.DRAFT,))

    def rollback(self, flow_id: str, number: Any) -> FlowVersion:
        """An archived version becomes the published one again; the current one is archived."""
        version = self.get_version(flow_id, number)
        if version.status is not VersionStatus.ARCHIVED:
            raise Conflict(
                f"version {version.version_number} is {version.status}: only an archived "
                "version can be rolled back to"
            )
        return self._publish(flow_id, version, (VersionStatus.ARCHIVED,))

    def diff(self, flow_id: str, before: Any, after: Any) -> dict[str, Any]:
        old = self.get_version(flow_id, version_number(before, "from"))
        new = self.get_version(flow_id, version_number(after, "to"))
        return {
            "from": old.version_number,
            "to": new.version_number,
            **diff_steps(old.steps, new.steps),
        }

    def _publish(
        self, flow_id: str, version: FlowVersion, allowed: tuple[VersionStatus, ...]
    ) -> FlowVersion:
        published = self._flows.publish(flow_id, version.version_number, allowed_from=allowed)
        if published is None:
            raise NotFound(f"flow {flow_id!r} has no version {version.version_number}")
        return published

    def _steps(self, data: Mapping[str, Any], *, required: bool) -> list[dict[str, Any]] | None:
        if "steps" not in data:
            if required:
                raise InvalidInput(
                    "steps is required: a list of {id, type, name, config, continue_on_error}"
                )
            return None
        return self._runners.validate_steps(data["steps"])

    @staticmethod
    def _immutable(version: FlowVersion) -> str:
        return (
            f"version {version.version_number} is {version.status} and can no longer change; "
            "create a new version instead"
        )

    # -- executions -----------------------------------------------------------------------

    def start(self, flow_id: str, data: Mapping[str, Any], executed_by: str) -> FlowExecution:
        """Start the published version (or ``version``) with ``lead_id`` and ``variables``."""
        flow = self.get_flow(flow_id)
        if not flow.is_active:
            raise Conflict(f"flow {flow_id!r} is inactive; activate it to execute it")
        variables = data.get("variables") if data.get("variables") is not None else {}
        if not isinstance(variables, dict):
            raise InvalidInput("variables must be an object")
        version = self._runnable_version(flow_id, data.get("version"))
        lead_id = lead_of(data.get("lead_id"))
        execution = self._flows.create_execution(
            NewExecution(
                flow_definition_id=flow_id,
                flow_version_id=version.id,
                lead_id=lead_id,
                context={
                    "lead_id": lead_id,
                    "variables": variables,
                    "version_number": version.version_number,
                },
                executed_by=executed_by,
            )
        )
        self._dispatcher.dispatch(execution.id)
        return execution

    def wait_for(self, execution: FlowExecution) -> FlowExecution:
        """The execution once terminal, or as it stands after FLOW_WAIT_SECONDS."""
        deadline = time.monotonic() + self._wait_seconds
        delay, longest = WAIT_POLL_SECONDS
        while not execution.status.terminal and time.monotonic() < deadline:
            time.sleep(delay)  # polling the store for the worker's progress
            delay = min(delay * 2, longest)
            execution = self._flows.get_execution(execution.id) or execution
        return execution

    def get_execution(self, flow_id: str, execution_id: str) -> FlowExecution:
        execution = self._flows.get_execution(execution_id)
        if execution is None or execution.flow_definition_id != flow_id:
            raise NotFound(f"flow {flow_id!r} has no execution {execution_id!r}")
        return execution

    def list_executions(self, flow_id: str, query: Mapping[str, Any]) -> list[FlowExecution]:
        self.get_flow(flow_id)
        status = query.get("status")
        if status and status not in set(ExecutionStatus):
            raise InvalidInput(
                f"status must be one of {', '.join(ExecutionStatus)}, got {status!r}"
            )
        version_id = None
        if query.get("version"):
            version_id = self.get_version(flow_id, query["version"]).id
        limit = query.get("limit") or 100
        try:
            limit = min(MAX_LIST, max(1, int(limit)))
        except ValueError:
            raise InvalidInput(f"limit must be a number, got {limit!r}") from None
        return self._flows.list_executions(
            flow_id,
            status=ExecutionStatus(status) if status else None,
            lead_id=lead_of(query.get("lead_id")),
            version_id=version_id,
            limit=limit,
        )

    def cancel(self, flow_id: str, execution_id: str) -> FlowExecution:
        self.get_execution(flow_id, execution_id)
        cancelled = self._flows.request_cancel(execution_id, utcnow())
        if cancelled is None:
            raise NotFound(f"flow {flow_id!r} has no execution {execution_id!r}")
        if not cancelled.status.terminal:
            self._dispatcher.dispatch(
                execution_id
            )  # a waiting one is cancelled by whoever drives it
        return cancelled

    def _runnable_version(self, flow_id: str, number: Any) -> FlowVersion:
        if number is None:
            version = self._flows.published_version(flow_id)
            if version is None:
                raise Conflict(f"flow {flow_id!r} has no published version; publish one first")
            return version
        version = self.get_version(flow_id, number)
        if version.status not in RUNNABLE_VERSIONS:
            raise Conflict(
                f"version {version.version_number} is a draft, which may still change: "
                "publish it to execute it"
            )
        return version


def code_runner(codes: CodeService, runs: RunService) -> RunCodeFunction:
    """How ``code`` steps run a code action: of the flow's project only, as a recorded run."""

    def run_code(
        project_uuid: str, code_id: str, params: Mapping[str, str], version: Any = None
    ) -> Any:
        code = codes.find(code_id)
        if code is None or code.project_uuid != project_uuid:
            raise StepFailed(f"code {code_id!r} not found in project {project_uuid!r}")
        try:
            result = runs.run(
                code.id, RunRequest(params={k: str(v) for k, v in params.items()}), version=version
            )
        except CodeActionsError as exc:
            raise StepFailed(f"code {code_id!r} could not run: {exc.message}") from None
        run = result.run
        if run.status is not RunStatus.COMPLETED:
            raise StepFailed(f"code {code_id!r} failed (run {run.id}): {run.result}")
        if str(result.outcome.content_type or "").lower() == "json":
            try:
                return json.loads(run.result)
            except ValueError:
                return run.result
        return run.result

    return run_code
