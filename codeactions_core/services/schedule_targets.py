"""What a firing starts: a code runs in the scheduler process (as a recorded run, sandboxed
like every run), a flow execution is created for the servers or workers that drive flows
(announced on the broker when there is one). ``codeactions_core.wiring.open_firing``
wires them."""

from __future__ import annotations

from codeactions_core.execution.runtime import RunRequest
from codeactions_core.scheduling.model import Schedule
from codeactions_core.services.flows import FlowService
from codeactions_core.services.runs import RunService
from codeactions_core.services.schedule_firing import Fired, Target, run_failure


def code_target(runs: RunService) -> Target:
    def fire(schedule: Schedule) -> Fired:
        result = runs.run(
            schedule.target_id, RunRequest(params=dict(schedule.params)), version=schedule.version
        )
        return Fired(run_id=result.run.id, error=run_failure(result.run.status, result.run.result))

    return fire


def flow_target(flows: FlowService) -> Target:
    def fire(schedule: Schedule) -> Fired:
        data: dict = {"variables": dict(schedule.variables)}
        if schedule.version is not None:
            data["version"] = schedule.version
        execution = flows.start(schedule.target_id, data, f"schedule:{schedule.id}")
        return Fired(execution_id=execution.id)

    return fire
