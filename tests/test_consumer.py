"""``codeactions consumer`` end to end: the real process, the real RabbitMQ, a real store.

Each test gets its own exchanges and queues (removed afterwards) and its own
SQLite store; the storage-failure test uses a PostgreSQL database it drops and
recreates under the running consumer.
"""

from __future__ import annotations

import json
import os
import pickle
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest

from codeactions_core.model import Project
from codeactions_core.plugins import get_plugin_manager
from codeactions_core.settings import Settings
from codeactions_core.store import Store
from codeactions_core.testing.fixtures import require_service
from codeactions_core.testing.server import free_port, run_cli
from codeactions_core.wiring import open_store
from tests.support.rabbitmq import (
    EventBroker,
    RunningConsumer,
    close_all_connections,
    eventually,
    start_consumer,
    start_consuming,
)

pytestmark = pytest.mark.e2e

T = TypeVar("T")
STOP_WITHIN = 5.0
ROLES = {"ana@example.com": 3, "bob@example.com": 1}


@dataclass
class StoreProbe:
    """Reads the consumer's store from the test, with a fresh connection per look."""

    settings: Settings

    @classmethod
    def from_env(cls, env: dict[str, str]) -> StoreProbe:
        return cls(Settings.from_env(env))

    def read(self, look: Callable[[Store], T]) -> T:
        store = open_store(self.settings, get_plugin_manager(self.settings))
        try:
            return look(store)
        finally:
            store.close()

    def project(self, project_uuid: str) -> Project | None:
        return self.read(lambda store: store.projects.get(project_uuid))

    def roles(self, project_uuid: str) -> dict[str, int]:
        """Each user's role on a project, as the permissions table has it."""
        listed = self.read(lambda store: store.permissions.list_by_project(project_uuid))
        return {permission.email: int(permission.role) for permission in listed}

    def snapshot(self, project_uuid: str) -> tuple:
        """The project and its permissions, without the update times."""
        project = self.project(project_uuid)
        listed = self.read(lambda store: store.permissions.list_by_project(project_uuid))
        return (
            (project.id, project.name, project.authorizations),
            [(p.id, p.email, p.role, p.created_at) for p in listed],
        )


class CreatesMarker:
    """Unpickling this creates a directory: the proof that something unpickled it."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple:
        return os.mkdir, (self.path,)


def project_event(name: str = "Shop", roles: dict[str, int] = ROLES) -> dict[str, Any]:
    """A project event as the old service received them, extra fields included."""
    return {
        "uuid": str(uuid.uuid4()),
        "name": name,
        "is_template": False,
        "timezone": "America/Sao_Paulo",
        "authorizations": [{"user_email": email, "role": role} for email, role in roles.items()],
    }


def permission_event(
    action: str, project: str, user: str, role: int | None = None
) -> dict[str, Any]:
    return {"action": action, "project": project, "user": user, "role": role}


def wait_for_roles(store: StoreProbe, project_uuid: str, roles: dict[str, int]) -> None:
    eventually(lambda: store.roles(project_uuid) == roles, f"roles {roles} on {project_uuid}")


def wait_until_all_acknowledged(broker: EventBroker) -> None:
    """Nothing left in either queue, ready or delivered but unacknowledged."""
    for queue in broker.queues:
        eventually(
            lambda queue=queue: broker.pending(queue) == 0, f"every message of {queue} acknowledged"
        )


def drop_database(server_uri: str, database_uri: str) -> None:
    """Drop the database, closing the connections the consumer holds to it."""
    import psycopg2
    from psycopg2 import sql

    name = urlsplit(database_uri).path.lstrip("/")
    connection = psycopg2.connect(server_uri)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
    finally:
        connection.close()


def stop_timed(consumer: RunningConsumer) -> tuple[int, float]:
    """SIGTERM the consumer: its exit status and how long it took to exit."""
    started = time.monotonic()
    status = consumer.terminate()
    return status, time.monotonic() - started


@pytest.fixture
def broker(suite_env) -> Iterator[EventBroker]:
    require_service("RabbitMQ", suite_env.rabbitmq_url, 5672)
    broker = EventBroker.unique(suite_env.rabbitmq_url)
    yield broker
    broker.delete()


@pytest.fixture
def store_env(tmp_path) -> dict[str, str]:
    """The consumer's store: SQLite in a private data directory."""
    return {"FLOWS_CODE_ACTIONS_DATA_DIR": str(tmp_path / "data")}


@pytest.fixture
def store(store_env) -> StoreProbe:
    return StoreProbe.from_env(store_env)


@pytest.fixture
def consumer(broker, store_env, tmp_path) -> Iterator[RunningConsumer]:
    running = start_consuming(broker, store_env, tmp_path)
    yield running
    running.terminate()


def test_a_project_event_creates_the_project_and_its_permissions(broker, consumer, store):
    event = project_event()
    broker.publish_json(broker.project_exchange, event)

    wait_for_roles(store, event["uuid"], ROLES)
    project = store.project(event["uuid"])
    assert project.name == "Shop"
    assert {a.user_email: int(a.role) for a in project.authorizations} == ROLES
    wait_until_all_acknowledged(broker)


def test_a_repeated_project_event_changes_nothing(broker, consumer, store):
    event = project_event()
    broker.publish_json(broker.project_exchange, event)
    wait_for_roles(store, event["uuid"], ROLES)
    before = store.snapshot(event["uuid"])

    broker.publish_json(broker.project_exchange, event)
    later = project_event("Later")  # same queue, so stored after the repeat
    broker.publish_json(broker.project_exchange, later)
    wait_for_roles(store, later["uuid"], ROLES)

    assert store.snapshot(event["uuid"]) == before
    wait_until_all_acknowledged(broker)


def test_permission_events_create_update_and_delete(broker, consumer, store):
    """Also: text/json and no content type at all are read as JSON."""
    project = str(uuid.uuid4())
    send = broker.publish_json
    exchange = broker.permission_exchange

    send(exchange, permission_event("create", project, "ana@example.com", 1))
    wait_for_roles(store, project, {"ana@example.com": 1})
    update = permission_event("update", project, "ana@example.com", 3)
    send(exchange, update, content_type="text/json")
    wait_for_roles(store, project, {"ana@example.com": 3})
    absent = permission_event("update", project, "bob@example.com", 2)
    broker.publish(exchange, json.dumps(absent).encode(), content_type=None)
    wait_for_roles(store, project, {"ana@example.com": 3, "bob@example.com": 2})
    send(exchange, permission_event("delete", project, "ana@example.com"))
    wait_for_roles(store, project, {"bob@example.com": 2})
    send(exchange, permission_event("delete", project, "ana@example.com"))  # absent: fine
    send(exchange, permission_event("create", project, "carol@example.com", 1))
    wait_for_roles(store, project, {"bob@example.com": 2, "carol@example.com": 1})

    wait_until_all_acknowledged(broker)
    log = consumer.log()
    assert "could not store" not in log and "dropped" not in log


def test_malformed_messages_are_logged_acknowledged_and_do_not_block(
    broker, consumer, store, tmp_path
):
    marker = tmp_path / "unpickled"
    long_garbage = b"<" + b"x" * 5000 + b">"
    bad_action = json.dumps(permission_event("rename", "p", "u@x", 1)).encode()
    bad_role = json.dumps(permission_event("create", "p", "u@x", 9)).encode()
    pickled = pickle.dumps(CreatesMarker(marker))
    garbage = [
        (broker.project_exchange, b"not json", "application/json"),
        (broker.project_exchange, b"[1, 2, 3]", "application/json"),
        (broker.project_exchange, json.dumps({"name": "No uuid"}).encode(), "application/json"),
        (broker.project_exchange, b"\xff\xfe\x00\x01", None),
        (broker.project_exchange, long_garbage, "text/json"),
        (broker.project_exchange, pickled, "application/x-python-serialize"),
        (broker.permission_exchange, bad_action, None),
        (broker.permission_exchange, bad_role, None),
    ]
    for exchange, body, content_type in garbage:
        broker.publish(exchange, body, content_type)
    good = project_event()
    broker.publish_json(broker.project_exchange, good)
    dan = permission_event("create", good["uuid"], "dan@example.com", 2)
    broker.publish_json(broker.permission_exchange, dan)

    wait_for_roles(store, good["uuid"], {**ROLES, "dan@example.com": 2})
    wait_until_all_acknowledged(broker)
    log = consumer.wait_for_log("dropped a malformed", count=len(garbage))
    for reason in (
        "not JSON",
        "a project must be a JSON object, got list",
        "uuid is required",
        "content type 'application/x-python-serialize' is not JSON",
        "action must be create, update or delete, got 'rename'",
        "role must be 1 (viewer), 2 (contributor) or 3 (moderator), got 9",
    ):
        assert reason in log
    assert "x" * 500 not in log  # an excerpt, never the whole body
    assert not marker.exists()  # the pickle was never loaded
    assert consumer.running()


@pytest.mark.postgres
def test_a_storage_failure_is_not_acknowledged_until_the_store_recovers(
    broker, new_postgres_database, postgres_server_uri, tmp_path
):
    database_uri = new_postgres_database("ca_consumer")
    db_env = {"FLOWS_CODE_ACTIONS_DB_TYPE": "postgres", "FLOWS_CODE_ACTIONS_DB_URI": database_uri}
    assert run_cli("migrate", settings=db_env).returncode == 0
    store = StoreProbe.from_env(db_env)
    consumer = start_consuming(broker, db_env, tmp_path)
    try:
        first = project_event("First")
        broker.publish_json(broker.project_exchange, first)
        wait_for_roles(store, first["uuid"], ROLES)

        drop_database(postgres_server_uri, database_uri)
        second = project_event("Second")
        broker.publish_json(broker.project_exchange, second)
        log = consumer.wait_for_log("could not store a project event, not acknowledged", count=2)
        assert "redelivered" in log  # the broker gave it back: it was never acknowledged
        assert broker.pending(broker.project_queue) == 1

        assert run_cli("migrate", settings=db_env).returncode == 0  # recreates it, empty
        wait_for_roles(store, second["uuid"], ROLES)
        # a new, empty database: the second event came back from the queue
        assert store.project(first["uuid"]) is None
        wait_until_all_acknowledged(broker)
        assert consumer.running()
    finally:
        consumer.terminate()


def test_the_consumer_carries_on_after_the_broker_closes_its_connections(broker, consumer, store):
    close_all_connections("test")
    event = project_event()
    broker.publish_json(broker.project_exchange, event)
    eve = permission_event("create", event["uuid"], "eve@example.com", 2)
    broker.publish_json(broker.permission_exchange, eve)

    wait_for_roles(store, event["uuid"], {**ROLES, "eve@example.com": 2})
    log = consumer.wait_for_log("reconnected to the broker")
    assert "lost the connection to the broker" in log
    wait_until_all_acknowledged(broker)
    assert consumer.running()


def test_sigterm_stops_it_with_status_0(broker, consumer):
    status, seconds = stop_timed(consumer)

    assert status == 0
    assert seconds < STOP_WITHIN
    assert "event consumer stopped" in consumer.log()
    for queue in broker.queues:
        eventually(lambda queue=queue: broker.consumers(queue) == 0, f"no consumer left on {queue}")


def test_an_unreachable_broker_is_retried_and_sigterm_still_stops_it(store_env, tmp_path):
    url = f"amqp://guest:pw-secret@127.0.0.1:{free_port()}//"
    consumer = start_consumer({**store_env, "FLOWS_CODE_ACTIONS_RABBITMQ_URL": url}, tmp_path)
    try:
        consumer.wait_for_log("unreachable", count=2)
        status, seconds = stop_timed(consumer)
    finally:
        consumer.terminate()

    assert status == 0
    assert seconds < STOP_WITHIN
    log = consumer.log()
    assert "127.0.0.1" in log and "pw-secret" not in log


def test_without_a_rabbitmq_url_it_refuses_to_start(store_env):
    done = run_cli("consumer", settings=store_env, timeout=60)

    assert done.returncode == 2
    assert "FLOWS_CODE_ACTIONS_RABBITMQ_URL" in done.stderr
    # refused before opening the store
    assert not Path(store_env["FLOWS_CODE_ACTIONS_DATA_DIR"]).exists()
