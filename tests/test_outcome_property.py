"""Whatever a sandbox reports, a run ends in exactly one terminal state and is stored: random
outcome frames, byte strings and sizes thrown at the outcome path (the harness document read by
``outcome_from_report``, then the run service and a real store) on SQLite, PostgreSQL and Mongo."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codeactions_core import hookimpl
from codeactions_core.execution.outcome import outcome_from_report
from codeactions_core.execution.runtime import Job, LogLine, Outcome, RunRequest, RuntimeHealth
from codeactions_core.execution.sandbox import Report
from codeactions_core.model import Code, LogType, RunStatus
from codeactions_core.plugins import get_plugin_manager
from codeactions_core.services.codes import CodeInput
from codeactions_core.settings import Settings
from codeactions_core.wiring import build_services

LANGUAGE = "frames"
RESULT_LIMIT = 64 * 1024


class Unprintable:
    """A value a runtime plugin might put in ``extra`` that even ``str()`` refuses."""

    def __str__(self) -> str:
        raise RuntimeError("no text for you")


class FrameRuntime:
    """A runtime plugin replaying the frame the test drew: a harness document read the way every
    sandboxed runtime reads it, or an Outcome a careless plugin might return, or an exception."""

    language = LANGUAGE

    def __init__(self) -> None:
        self.next: Any = None

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def health(self) -> RuntimeHealth:
        return RuntimeHealth(ready=True, message="frames")

    def prepare(self, code: Code) -> None: ...

    def execute(self, job: Job) -> Outcome:
        frame = self.next
        if isinstance(frame, Exception):
            raise frame
        if isinstance(frame, Outcome):
            return frame
        return outcome_from_report(Report(**frame), timeout=5, result_limit=RESULT_LIMIT)


class FramePlugin:
    def __init__(self, runtime: FrameRuntime) -> None:
        self.runtime = runtime

    @hookimpl
    def codeactions_runtimes(self, settings: Settings) -> list[FrameRuntime]:
        return [self.runtime]


hostile_text = st.one_of(
    st.text(max_size=50),
    st.binary(max_size=200).map(lambda data: data.decode("utf-8", errors="surrogateescape")),
    st.sampled_from(["\x00", "a\x00b", "\ud800", "\udfff tail", "é\x00\ud83d"]),
    st.integers(min_value=0, max_value=200_000).map(lambda size: "x" * size),
)
json_like = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), hostile_text),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(hostile_text, inner, max_size=4),
    max_leaves=10,
)
log_entry = st.one_of(
    st.lists(
        st.one_of(st.sampled_from(["debug", "info", "error", "bogus"]), hostile_text), max_size=3
    ),
    json_like,
)
document = st.fixed_dictionaries(
    {},
    optional={
        "ok": st.one_of(st.booleans(), json_like),
        "has_run": st.one_of(st.booleans(), json_like),
        "result": st.one_of(hostile_text, json_like),
        "status_code": st.one_of(
            st.integers(min_value=-10, max_value=100_000), hostile_text, json_like
        ),
        "content_type": st.one_of(hostile_text, json_like),
        "logs": st.one_of(
            st.lists(log_entry, max_size=30),
            st.integers(0, 3000).map(lambda n: [["info", "l"]] * n),
        ),
        "logs_dropped": st.one_of(st.integers(min_value=0, max_value=10**6), st.none()),
        "error": st.one_of(hostile_text, st.none()),
        "setup_error": hostile_text,
    },
)
report = st.fixed_dictionaries(
    {
        "outcome": st.one_of(st.none(), document),
        "exit_code": st.one_of(st.none(), st.integers(-255, 255)),
        "signal": st.one_of(st.none(), st.integers(0, 64)),
        "timed_out": st.booleans(),
        "stdout": hostile_text,
        "stdout_truncated": st.booleans(),
        "stderr": hostile_text,
        "stderr_truncated": st.booleans(),
        "error": st.one_of(st.none(), hostile_text),
    }
)
careless_outcome = st.builds(
    Outcome,
    status=st.sampled_from(list(RunStatus)),
    result=hostile_text,
    extra=st.one_of(
        st.dictionaries(hostile_text, json_like, max_size=4),
        st.just({"status_code": 101, "content_type": "x" * 5000}),
        st.just({"odd": Unprintable()}),
        st.just({"big": "z" * 200_000}),
    ),
    logs=st.lists(st.builds(LogLine, st.sampled_from(list(LogType)), hostile_text), max_size=20),
    stdout=hostile_text,
    stderr=hostile_text,
    timed_out=st.booleans(),
)
raised = st.one_of(st.just("boom").map(RuntimeError), st.just("\x00\ud800").map(ValueError))
frames = st.one_of(report, careless_outcome, raised)
requests_ = st.builds(
    RunRequest,
    params=st.dictionaries(st.text(min_size=1, max_size=5), hostile_text, max_size=3),
    body=hostile_text,
    headers=st.dictionaries(
        st.sampled_from(["X-A", "Cookie", "Authorization"]), st.lists(hostile_text, max_size=2)
    ),
)


def backend_settings(backend: str, tmp_path, request) -> Settings:
    common: dict[str, Any] = {
        "data_dir": str(tmp_path),
        "disable_plugins": ("python", "javascript", "go"),
        "run_max_log_lines": 100,
        "run_max_log_kb": 16,
        "run_max_result_kb": 32,
        "run_max_extra_kb": 4,
        "sandbox_output_kb": 8,
    }
    if backend == "sqlite":
        return Settings(db_type="sqlite", **common)
    if backend == "postgres":
        return Settings(
            db_type="postgres",
            db_uri=request.getfixturevalue("new_postgres_database")("ca_prop"),
            **common,
        )
    pytest.importorskip("mongomock")
    mongo = pytest.importorskip("codeactions_mongo")
    return Settings.of(
        mongo.MongoSettings,
        db_type="mongodb",
        mongo_db_uri="mongomock://localhost",
        mongo_db_name=f"ca_prop_{uuid.uuid4().hex[:8]}",
        **common,
    )


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "mongomock"]
)
def world(request, tmp_path):
    configured = backend_settings(request.param, tmp_path, request)
    runtime = FrameRuntime()
    pm = get_plugin_manager(configured)
    pm.register(FramePlugin(runtime), name="frames")
    services = build_services(configured, pm)
    services.store.migrate()
    code = services.codes.create(
        CodeInput(
            name="frames",
            type="endpoint",
            language=LANGUAGE,
            project_uuid="P",
            source="replay",
        )
    )
    yield services, runtime, code
    services.close()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(frame=frames, request=requests_)
def test_every_frame_ends_the_run_in_one_terminal_state(world, frame, request):
    services, runtime, code = world
    runtime.next = frame
    result = services.runs.run(code.id, request)
    stored = services.store.runs.get(result.run.id)
    assert stored is not None
    assert stored.status in (RunStatus.COMPLETED, RunStatus.FAILED)
    assert stored.status is result.run.status
    assert isinstance(stored.result, str) and "\x00" not in stored.result
    assert len(stored.result.encode("utf-8")) <= 32 * 1024
    if stored.status is RunStatus.COMPLETED:
        assert 200 <= stored.extra.get("status_code", 200) <= 599
    logs = services.log_store.list_by_run(stored, page=1, per_page=1000)
    assert logs.total <= 100
