"""What a firing starts, wired from the services of the scheduler process: a code runs
there (as a recorded run, sandboxed like every run), a flow execution is created for
the servers or workers that drive flows (announced on the broker when there is one)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

from codeactions_core.execution.runtime import RunRequest
from codeactions_core.flows.dispatch import Announce, LeaveToWorkers
from codeactions_core.flows.registry import load_step_runners
from codeactions_core.scheduling.firing import Fired, ScheduleFirer, Target, run_failure
from codeactions_core.scheduling.model import Schedule, TargetType
from codeactions_core.services import Services, build_services
from codeactions_core.services.flows import FlowService
from codeactions_core.services.runs import RunService
from codeactions_core.settings import Settings
from codeactions_core.store import LockRepository, Store

FIRING_THREADS = 8


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


@dataclass
class Firing:
    """The scheduler process's schedule firer and what it needs, closed together."""

    firer: ScheduleFirer
    services: Services
    executor: ThreadPoolExecutor
    dispatcher: Announce | LeaveToWorkers

    def close(self) -> None:
        """Wait for firings under way, then stop runtimes (the store is the
        caller's)."""
        self.executor.shutdown(wait=True)
        if isinstance(self.dispatcher, Announce):
            self.dispatcher.close()
        self.services.runtimes.stop()


def open_firing(settings: Settings, store: Store, locks: LockRepository) -> Firing:
    services = build_services(settings, store=store)
    dispatcher = Announce(settings) if settings.rabbitmq_url else LeaveToWorkers()
    flows = FlowService(
        store.flows,
        load_step_runners(services.plugins, settings),
        dispatcher,
        wait_seconds=settings.flow_wait_seconds,
    )
    executor = ThreadPoolExecutor(max_workers=FIRING_THREADS, thread_name_prefix="schedule-fire")
    firer = ScheduleFirer(
        schedules=store.schedules,
        locks=locks,
        targets={TargetType.CODE: code_target(services.runs), TargetType.FLOW: flow_target(flows)},
        executor=executor,
        grace=timedelta(seconds=settings.schedule_misfire_grace_seconds),
        release=store.release,
    )
    return Firing(firer, services, executor, dispatcher)
