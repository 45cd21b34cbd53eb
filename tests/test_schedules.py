"""Schedules: the cron parsing, the firing pass under a controlled clock against the real
PostgreSQL and SQLite stores, and end to end a real `codeactions serve` with two real
`codeactions scheduler` replicas firing codes and flows."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import requests

from codeactions_core.errors import InvalidInput, NotFound
from codeactions_core.model import CodeType, NewCode
from codeactions_core.plugins import get_plugin_manager
from codeactions_core.scheduling.cron import Cron
from codeactions_core.scheduling.model import FiringStatus, NewSchedule, Schedule, TargetType
from codeactions_core.services.schedule_firing import STILL_RUNNING, Fired, ScheduleFirer
from codeactions_core.settings import Settings
from codeactions_core.store import Store
from codeactions_core.testing.server import (
    RunningProcess,
    RunningServer,
    run_cli,
    start_server,
    start_until_logged,
)
from codeactions_core.wiring import open_store

T0 = datetime(2030, 6, 3, 12, 0, tzinfo=UTC)  # a Monday
FIVE_MINUTES = timedelta(minutes=5)
DEADLINE_SECONDS = 60.0


# -- cron -------------------------------------------------------------------------------


def test_cron_reads_crontab_weekdays_and_time_zones():
    sunday = Cron.parse("0 9 * * 0", "Europe/Lisbon").next_after(T0)
    assert sunday == datetime(2030, 6, 9, 8, 0, tzinfo=UTC)  # Sunday 09:00 WEST
    assert Cron.parse("0 9 * * 7", "UTC").next_after(T0).weekday() == 6
    seconds = Cron.parse("*/10 * * * * *", "UTC")  # six fields: seconds first
    assert seconds.next_after(T0) == T0 + timedelta(seconds=10)
    # 02:30 does not exist in Berlin on 2030-03-31 (clocks jump 02:00 -> 03:00)
    spring = Cron.parse("30 2 * * *", "Europe/Berlin").next_after(
        datetime(2030, 3, 30, 12, tzinfo=UTC)
    )
    assert spring == datetime(2030, 3, 31, 1, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("cron", "zone", "message"),
    [
        ("61 * * * *", "UTC", "is not a valid cron expression"),
        ("* * *", "UTC", "has 3 fields"),
        ("", "UTC", "cron is required"),
        ("0 0 31 2 *", "UTC", "never fires"),
        ("* * * * *", "Mars/Olympus_Mons", "'Mars/Olympus_Mons' is not a known IANA time zone"),
        ("* * * * *", "../../etc/passwd", "is not a known IANA time zone"),
        ("* * * * *", 5, "timezone must be an IANA time zone name"),
    ],
)
def test_bad_cron_or_zone_names_the_problem(cron, zone, message):
    with pytest.raises(InvalidInput) as caught:
        Cron.parse(cron, zone)
    assert message in caught.value.message


# -- the firing pass, on a controlled clock ---------------------------------------------


class Inline(Executor):
    """Runs a firing in the pass's thread, so a test sees it done when tick returns."""

    def submit(self, fn: Callable, /, *args, **kwargs) -> Future:
        future: Future = Future()
        future.set_result(fn(*args, **kwargs))
        return future


@pytest.fixture(scope="module")
def postgres_settings(new_postgres_database) -> Settings:
    """One migrated database for the module; each test empties the tables it uses."""
    settings = Settings(db_type="postgres", db_uri=new_postgres_database())
    migrated = open_store(settings, get_plugin_manager(settings))
    migrated.migrate()
    migrated.close()
    return settings


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path) -> Iterator[Store]:
    if request.param == "postgres":
        settings = request.getfixturevalue("postgres_settings")
    else:
        settings = Settings(db_type="sqlite", db_uri=f"sqlite:///{tmp_path}/s.db")
    opened = open_store(settings, get_plugin_manager(settings))
    opened.migrate()
    if request.param == "postgres":
        opened.database.execute_sql("TRUNCATE schedule_firings, schedules, scheduler_locks, codes")
    try:
        yield opened
    finally:
        opened.close()


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def schedule_of(store: Store, cron: str = "*/5 * * * *") -> Schedule:
    code = store.codes.create(
        NewCode(
            name="s",
            type=CodeType.ENDPOINT,
            source="",
            language="python",
            project_uuid="p",
            timeout=60,
        )
    )
    return store.schedules.create(
        NewSchedule(
            target_type=TargetType.CODE,
            target_id=code.id,
            project_uuid="p",
            cron=cron,
            timezone="UTC",
            next_fire_at=T0,
        )
    )


def firer(
    store: Store, clock: Clock, fired: list, holder: str, fail: Exception | None = None
) -> ScheduleFirer:
    def fire(schedule: Schedule) -> Fired:
        if fail is not None:
            raise fail
        fired.append((schedule.id, clock.now))
        return Fired(run_id=f"00000000-0000-4000-8000-{len(fired):012d}")

    return ScheduleFirer(
        schedules=store.schedules,
        locks=store.locks,
        targets={TargetType.CODE: fire},
        executor=Inline(),
        grace=timedelta(seconds=60),
        clock=clock,
        holder=holder,
    )


def test_an_occurrence_fires_once_whichever_replica_looks(store):
    schedule = schedule_of(store)
    clock, fired = Clock(T0 + timedelta(seconds=10)), []
    first, second = firer(store, clock, fired, "a"), firer(store, clock, fired, "b")
    assert (first.tick().fired, second.tick().fired) == (1, 0)
    second._advance(schedule, clock.now)  # a replica with a stale view: the claim stops it
    assert len(fired) == 1
    moved = store.schedules.get(schedule.id)
    assert (moved.next_fire_at, moved.last_fired_at, moved.missed) == (T0 + FIVE_MINUTES, T0, 0)
    [firing] = store.schedules.firings(schedule.id)
    assert (firing.status, firing.scheduled_for, firing.run_id) == (
        FiringStatus.FIRED,
        T0,
        "00000000-0000-4000-8000-000000000001",
    )


def test_missed_occurrences_are_counted_not_replayed(store):
    recent, stale = schedule_of(store), schedule_of(store)
    fired: list = []
    # an hour without a scheduler; the last occurrence is 20 s old: it fires, 12 are missed
    firer(store, Clock(T0 + timedelta(minutes=60, seconds=20)), fired, "a")._advance(
        recent, T0 + timedelta(minutes=60, seconds=20)
    )
    # two minutes after the last one: older than the grace, none fires, 13 are missed
    firer(store, Clock(T0 + timedelta(minutes=62)), fired, "a")._advance(
        stale, T0 + timedelta(minutes=62)
    )
    assert [when for _, when in fired] == [T0 + timedelta(minutes=60, seconds=20)]
    after_recent, after_stale = store.schedules.get(recent.id), store.schedules.get(stale.id)
    assert (after_recent.missed, after_recent.last_missed_at, after_recent.last_fired_at) == (
        12,
        T0 + timedelta(minutes=55),
        T0 + timedelta(minutes=60),
    )
    assert (after_stale.missed, after_stale.last_missed_at, after_stale.last_fired_at) == (
        13,
        T0 + timedelta(minutes=60),
        None,
    )
    assert after_stale.next_fire_at == T0 + timedelta(minutes=65)
    assert after_stale.to_json()["missed"] == 13


def test_a_held_lock_skips_the_pass(store):
    schedule_of(store)
    assert store.locks.try_acquire("schedules", "another-replica", timedelta(minutes=1))
    fired: list = []
    assert firer(store, Clock(T0), fired, "a").tick().status == "skipped"
    assert fired == []


def test_a_firing_that_cannot_start_says_why(store):
    schedule = schedule_of(store)
    failing = firer(store, Clock(T0), [], "a", fail=NotFound("code 'x' not found"))
    assert failing.tick().fired == 1
    [firing] = store.schedules.firings(schedule.id)
    assert (firing.status, firing.error, firing.run_id) == (
        FiringStatus.FAILED,
        "code 'x' not found",
        None,
    )


# -- end to end: a server and two scheduler replicas on PostgreSQL ----------------------

SOURCE_V1 = "def Run(engine):\n    engine.result.set('v1 ' + engine.params.get('who', ''))\n"
SOURCE_V2 = "def Run(engine):\n    engine.result.set('v2')\n"


def poll(what: Callable[[], object], deadline: float = DEADLINE_SECONDS) -> object:
    """What ``what`` answers once it is truthy; fails after ``deadline`` seconds."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = what()
        if value:
            return value
        time.sleep(0.2)  # polling the API for the scheduler's progress
    raise AssertionError("the scheduler did not fire in time")


@pytest.fixture(scope="module")
def served(new_postgres_database, tmp_path_factory) -> Iterator[tuple[dict, RunningServer]]:
    """One `codeactions serve` on a fresh PostgreSQL database for the module's e2e tests."""
    settings = {
        "FLOWS_CODE_ACTIONS_DB_TYPE": "postgres",
        "FLOWS_CODE_ACTIONS_DB_URI": new_postgres_database(),
    }
    assert run_cli("migrate", settings=settings).returncode == 0
    server = start_server(settings, tmp_path_factory.mktemp("schedules-server"))
    try:
        yield settings, server
    finally:
        server.stop()


@pytest.mark.postgres
@pytest.mark.e2e
def test_schedulers_fire_codes_and_flows_once_per_occurrence(served, tmp_path):
    settings, server = served
    schedulers: list[RunningProcess] = []
    try:
        api = server.url
        code = requests.post(
            api("/code"),
            json={
                "name": "tick",
                "type": "endpoint",
                "language": "python",
                "project_uuid": "p",
                "source": SOURCE_V1,
            },
            timeout=30,
        ).json()
        requests.patch(api(f"/code/{code['id']}"), data=SOURCE_V2, timeout=30).raise_for_status()
        schedule = requests.post(
            api(f"/code/{code['id']}/schedules"),
            json={
                "cron": "* * * * * *",
                "timezone": "Europe/Lisbon",
                "params": {"who": "cron"},
                "version": 1,
            },
            timeout=30,
        )
        assert schedule.status_code == 201, schedule.text
        schedule = schedule.json()
        flow = requests.post(
            api("/flows"), json={"name": "nightly", "project_uuid": "p"}, timeout=30
        ).json()
        steps = [{"id": "run", "type": "code", "name": "run", "config": {"code_id": code["id"]}}]
        draft = requests.post(
            api(f"/flows/{flow['id']}/versions"), json={"steps": steps}, timeout=30
        ).json()
        requests.post(
            api(f"/flows/{flow['id']}/versions/{draft['version_number']}/publish"), timeout=30
        ).raise_for_status()
        flow_schedule = requests.post(
            api(f"/flows/{flow['id']}/schedules"),
            json={
                "cron": "*/2 * * * * *",
                "timezone": "UTC",
                "variables": {"from": "cron"},
            },
            timeout=30,
        ).json()

        scheduler_settings = {**settings, "FLOWS_CODE_ACTIONS_SCHEDULE_POLL_SECONDS": "0.3"}
        for name in ("scheduler-a", "scheduler-b"):
            schedulers.append(
                start_until_logged(
                    "scheduler", scheduler_settings, tmp_path, "scheduler started", name=name
                )
            )
        code_item = api(f"/code/{code['id']}/schedules/{schedule['id']}")

        def fired_runs() -> list[dict]:
            firings = requests.get(code_item, timeout=30).json()["firings"]
            return [f for f in firings if f["status"] == "fired"]

        firings = poll(lambda: len(fired_runs()) >= 3 and fired_runs())
        run = requests.get(api(f"/coderun/{firings[0]['run_id']}"), timeout=30).json()
        assert (run["status"], run["result"], run["version"], run["params"]) == (
            "completed",
            "v1 cron",
            1,
            {"who": "cron"},
        )

        flow_item = api(f"/flows/{flow['id']}/schedules/{flow_schedule['id']}")
        flow_firing = poll(
            lambda: next(
                (
                    f
                    for f in requests.get(flow_item, timeout=30).json()["firings"]
                    if f["execution_id"]
                ),
                None,
            )
        )
        execution_url = api(f"/flows/{flow['id']}/executions/{flow_firing['execution_id']}")
        execution = poll(
            lambda: (
                (e := requests.get(execution_url, timeout=30).json())["status"] == "completed" and e
            )
        )
        assert execution["result"]["run"] == "v2"

        for process in schedulers:  # SIGTERM: each waits for the firings it started
            assert process.stop() == 0
        firings = requests.get(code_item, timeout=30).json()["firings"]
        # an occurrence that came while the previous run still ran (the first run starts the
        # runtimes) is skipped, and says so
        skipped = [f for f in firings if f["status"] == "failed"]
        assert all(f["error"] == STILL_RUNNING and f["run_id"] is None for f in skipped)
        firings = [f for f in firings if f["status"] != "failed"]
        assert len(firings) >= 3 and all(f["status"] == "fired" for f in firings), firings
        # every occurrence fired once, by one replica, as one run, though two replicas looked
        assert len({f["scheduled_for"] for f in firings}) == len(firings)
        runs = requests.get(api("/coderun"), params={"code_id": code["id"]}, timeout=30).json()
        scheduled = {r["id"]: r for r in runs if r["params"] == {"who": "cron"}}
        assert sorted(scheduled) == sorted(f["run_id"] for f in firings)
        assert all((r["version"], r["result"]) == (1, "v1 cron") for r in scheduled.values())
        assert "Traceback" not in "".join(process.log() for process in schedulers)

        assert requests.delete(code_item, timeout=30).json()["id"] == schedule["id"]
        assert requests.delete(flow_item, timeout=30).status_code == 200
        assert requests.get(code_item, timeout=30).status_code == 404
        assert requests.get(api(f"/code/{code['id']}/schedules"), timeout=30).json() == []
    finally:
        for process in schedulers:
            process.stop()


@pytest.mark.postgres
@pytest.mark.e2e
def test_bad_schedules_name_the_problem(served):
    _, server = served
    code = requests.post(
        server.url("/code"),
        json={
            "name": "x",
            "type": "endpoint",
            "language": "python",
            "project_uuid": "p",
            "source": SOURCE_V2,
        },
        timeout=30,
    ).json()
    url = server.url(f"/code/{code['id']}/schedules")
    cases = [
        ({"cron": "every day"}, 400, "has 2 fields"),
        ({"cron": "0 25 * * *"}, 400, "is not a valid cron expression"),
        (
            {"cron": "0 9 * * *", "timezone": "Europe/Atlantis"},
            400,
            "not a known IANA time zone",
        ),
        ({"cron": "0 9 * * *", "version": 4}, 404, "has no version 4"),
        ({"cron": "0 9 * * *", "params": [1]}, 400, "params must be an object"),
        ({"cron": "0 9 * * *", "every": "day"}, 400, "unknown field(s) 'every'"),
    ]
    for body, status, message in cases:
        answer = requests.post(url, json=body, timeout=30)
        assert answer.status_code == status and message in answer.json()["message"], (
            body,
            answer.text,
        )
    assert (
        requests.post(
            url, data="not json", headers={"Content-Type": "application/json"}, timeout=30
        ).status_code
        == 400
    )
    missing = requests.get(f"{url}/00000000-0000-4000-8000-000000000000", timeout=30)
    assert missing.status_code == 404 and "not found" in missing.json()["message"]
    unknown_flow = requests.post(
        server.url("/flows/00000000-0000-4000-8000-000000000000/schedules"),
        json={"cron": "0 9 * * *"},
        timeout=30,
    )
    assert unknown_flow.status_code == 404
    assert requests.get(url, timeout=30).json() == []


def test_a_firing_still_running_makes_the_next_occurrence_skip(store):
    schedule = schedule_of(store)
    started, finish = threading.Event(), threading.Event()

    def slow(_: Schedule) -> Fired:
        started.set()
        finish.wait(DEADLINE_SECONDS)
        return Fired(run_id="00000000-0000-4000-8000-000000000009")

    clock = Clock(T0)
    with ThreadPoolExecutor(2) as pool:
        slow_firer = ScheduleFirer(
            schedules=store.schedules,
            locks=store.locks,
            targets={TargetType.CODE: slow},
            executor=pool,
            grace=timedelta(seconds=60),
            clock=clock,
            release=store.release,
        )
        assert slow_firer.tick().fired == 1
        assert started.wait(DEADLINE_SECONDS)
        clock.now = T0 + FIVE_MINUTES
        assert slow_firer.tick().fired == 0
        finish.set()
    later, first = store.schedules.firings(schedule.id)
    assert (first.status, first.run_id) == (
        FiringStatus.FIRED,
        "00000000-0000-4000-8000-000000000009",
    )
    assert (later.status, later.error) == (FiringStatus.FAILED, STILL_RUNNING)
