"""Each process builds only what it uses (``codeactions_core.wiring``): the worker and the
scheduler's firing construct none of the API server's services."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from codeactions_core import wiring
from codeactions_core.plugins import get_plugin_manager
from codeactions_core.services.schema import ensure_schema_ready
from codeactions_core.settings import Settings
from codeactions_core.store import Store
from codeactions_core.wiring import build_services, build_worker, open_firing, open_store

BROKER = "amqp://guest:guest@127.0.0.1:5672//"
"""Named, never reached: publishers connect on first use, and nothing here publishes."""

SERVER_ONLY = (
    "LibraryService",
    "HistoryService",
    "ProjectService",
    "AccessService",
    "HealthService",
    "build_rate_limiter",
    "PublishRuns",
    "RunHere",
    "RunOnWorkers",
)
"""What only the API server builds: its use cases and the async runs' submitters."""
SUBMITTERS = ("PublishRuns", "RunHere", "RunOnWorkers")


class Forbidden(AssertionError):
    pass


def trap(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """Make each of ``names`` in ``codeactions_core.wiring`` raise when constructed."""
    for name in names:
        assert hasattr(wiring, name), f"wiring no longer uses {name}: update this test"

        def forbidden(*args: object, _name: str = name, **kwargs: object) -> None:
            raise Forbidden(f"{_name} constructed")

        monkeypatch.setattr(wiring, name, forbidden)


@pytest.fixture(params=["no broker", "broker"])
def process_settings(request, tmp_path) -> Settings:
    rabbitmq_url = BROKER if request.param == "broker" else ""
    return Settings(data_dir=str(tmp_path / "data"), rabbitmq_url=rabbitmq_url)


@pytest.fixture
def store(process_settings: Settings) -> Iterator[Store]:
    store = open_store(process_settings, get_plugin_manager(process_settings))
    ensure_schema_ready(store)
    yield store
    store.close()


def test_the_worker_builds_no_dispatcher_no_flow_service_and_no_server_service(
    process_settings: Settings, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    trap(
        monkeypatch,
        *SERVER_ONLY,
        "FlowService",
        "Announce",
        "DriveHere",
        "LeaveToWorkers",
        "ScheduleFirer",
        "ThreadPoolExecutor",
    )
    worker = build_worker(process_settings, store)
    try:
        assert worker.async_runs.submitter is None
        assert not hasattr(worker, "flow_dispatcher")
        assert worker.step_runners.types()
    finally:
        worker.close()


def test_the_firing_builds_no_flow_driver_no_async_runs_and_no_server_service(
    process_settings: Settings, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    trap(monkeypatch, *SERVER_ONLY, "ExecutionDriver", "AsyncRunService", "DriveHere")
    settings = process_settings.replace(flows_in_server=True)  # still: the scheduler drives none
    firing = open_firing(settings, store, locks=object())
    try:
        assert set(firing.firer.targets) == {"code", "flow"}
    finally:
        firing.close()


def test_the_trap_catches_what_the_api_server_builds(
    process_settings: Settings, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checks above can fail: the same traps stop ``build_services``."""
    submitters = ("PublishRuns", "RunOnWorkers") if process_settings.rabbitmq_url else ("RunHere",)
    built = [name for name in SERVER_ONLY if name not in SUBMITTERS] + [*submitters, "FlowService"]
    for name in built:
        with monkeypatch.context() as patched:
            trap(patched, name)
            with pytest.raises(Forbidden, match=name):
                build_services(process_settings, store=store)


def test_a_worker_process_loads_no_http_framework(tmp_path) -> None:
    """Building the worker imports neither falcon nor gunicorn nor the web package."""
    script = textwrap.dedent(
        f"""
        import sys
        from codeactions_core.settings import Settings
        from codeactions_core.wiring import build_worker, ready_store

        settings = Settings(data_dir={str(tmp_path)!r}, rabbitmq_url={BROKER!r})
        worker = build_worker(settings, ready_store(settings))
        worker.close()
        loaded = sorted(
            name for name in sys.modules
            if name.split(".")[0] in ("falcon", "gunicorn")
            or name.startswith("codeactions_core.web")
        )
        print(" ".join(loaded))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
