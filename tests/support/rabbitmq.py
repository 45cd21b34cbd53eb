"""The real RabbitMQ and the real ``codeactions consumer`` process, for end-to-end tests.

Every :class:`EventBroker` names its own exchanges and queues (a random suffix),
so tests never see each other's messages; :meth:`EventBroker.delete` removes them.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from kombu import Connection, Exchange, Queue

from codeactions_core.testing.server import child_env, cli_command, stop_process

T = TypeVar("T")

POLL_SECONDS = 0.05
DEADLINE = 20.0
ROUTING_KEY = "event.test"


def eventually(probe: Callable[[], T], what: str, deadline: float = DEADLINE) -> T:
    """The first truthy answer of ``probe``, asked until ``deadline`` seconds have passed."""
    give_up = time.monotonic() + deadline
    while True:
        answer = probe()
        if answer:
            return answer
        if time.monotonic() > give_up:
            raise AssertionError(f"not true within {deadline} s: {what} (last answer {answer!r})")
        time.sleep(POLL_SECONDS)  # polling interval, not synchronisation


def rabbitmqctl(*args: str) -> str:
    """Run ``rabbitmqctl`` on this machine's broker; its standard output."""
    done = subprocess.run(
        ["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def close_all_connections(reason: str = "test") -> None:
    """Make the broker close every client connection, as a broker restart would."""
    rabbitmqctl("close_all_connections", reason)


@dataclass(frozen=True)
class EventBroker:
    """A private pair of topic exchanges and queues on a real broker."""

    url: str
    project_exchange: str
    project_queue: str
    permission_exchange: str
    permission_queue: str

    @classmethod
    def unique(cls, url: str) -> EventBroker:
        suffix = uuid.uuid4().hex[:10]
        return cls(
            url,
            project_exchange=f"test.projects.{suffix}",
            project_queue=f"test.code-actions.projects.{suffix}",
            permission_exchange=f"test.permissions.{suffix}",
            permission_queue=f"test.code-actions-permissions.{suffix}",
        )

    def settings(self) -> dict[str, str]:
        """The consumer's settings naming this broker, exchanges and queues."""
        return {
            "FLOWS_CODE_ACTIONS_RABBITMQ_URL": self.url,
            "FLOWS_CODE_ACTIONS_PROJECT_EXCHANGE": self.project_exchange,
            "FLOWS_CODE_ACTIONS_PROJECT_QUEUE": self.project_queue,
            "FLOWS_CODE_ACTIONS_PERMISSION_EXCHANGE": self.permission_exchange,
            "FLOW_CODE_ACTIONS_PERMISSION_QUEUE": self.permission_queue,
        }

    @property
    def queues(self) -> tuple[str, str]:
        return self.project_queue, self.permission_queue

    def connection(self) -> Connection:
        """A new connection whose publishes return once the broker has taken them."""
        return Connection(self.url, transport_options={"confirm_publish": True})

    def publish(
        self, exchange: str, body: bytes, content_type: str | None = "application/json"
    ) -> None:
        """Publish ``body`` as is (``content_type`` None: the message names none)."""
        with self.connection() as conn:
            channel = conn.default_channel
            message = channel.prepare_message(
                body, content_type=content_type, properties={"delivery_mode": 2}
            )
            channel.basic_publish(message, exchange=exchange, routing_key=ROUTING_KEY)

    def publish_json(
        self, exchange: str, document: Any, content_type: str = "application/json"
    ) -> None:
        self.publish(exchange, json.dumps(document).encode(), content_type)

    def consumers(self, queue: str) -> int:
        """Consumers on ``queue`` (0 when it does not exist yet), from a passive declare."""
        with self.connection() as conn:
            try:
                declared = Queue(queue, channel=conn.default_channel).queue_declare(passive=True)
            except conn.channel_errors:
                return 0
        return declared.consumer_count

    def pending(self, queue: str) -> int:
        """Messages in ``queue`` not acknowledged yet: ready plus delivered but unacknowledged."""
        vhost = Connection(self.url).virtual_host or "/"
        listed = rabbitmqctl("list_queues", "-p", vhost, "name", "messages", "--formatter", "json")
        rows = json.loads(listed)
        return {row["name"]: int(row["messages"]) for row in rows}[queue]

    def delete(self) -> None:
        """Remove the queues and exchanges (absent ones are fine)."""
        with self.connection() as conn:
            for queue in self.queues:
                Queue(queue, channel=conn.channel()).delete()
            for exchange in (self.project_exchange, self.permission_exchange):
                Exchange(exchange, channel=conn.channel()).delete()


@dataclass
class RunningConsumer:
    """A ``codeactions consumer`` process writing its log to a file."""

    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def running(self) -> bool:
        return self.process.poll() is None

    def check_alive(self) -> None:
        """AssertionError, with the log, when the process has exited."""
        if not self.running():
            raise AssertionError(f"consumer exited with {self.process.returncode}:\n{self.log()}")

    def wait_for_log(self, text: str, count: int = 1, deadline: float = DEADLINE) -> str:
        """The log once ``text`` stands in it ``count`` times."""

        def probe() -> str:
            log = self.log()
            if log.count(text) >= count:
                return log
            self.check_alive()
            return ""

        return eventually(probe, f"{text!r} {count} time(s) in the consumer log", deadline)

    def terminate(self, deadline: float = DEADLINE) -> int:
        """Send SIGTERM and wait; the exit status (the process is killed after ``deadline``)."""
        return stop_process(self.process, deadline)


def start_consumer(settings: Mapping[str, str], log_dir: Path) -> RunningConsumer:
    """Start ``codeactions consumer`` with exactly these settings (it connects on its own)."""
    log_path = Path(log_dir) / f"consumer-{uuid.uuid4().hex[:8]}.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            cli_command("consumer"),
            env=child_env(settings),
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    return RunningConsumer(process, log_path)


def start_consuming(
    broker: EventBroker, settings: Mapping[str, str], log_dir: Path
) -> RunningConsumer:
    """Start the consumer on ``broker``; return once it consumes from both queues."""
    consumer = start_consumer({**settings, **broker.settings()}, log_dir)

    def consuming(queue: str) -> bool:
        consumer.check_alive()
        return broker.consumers(queue) >= 1

    try:
        for queue in broker.queues:
            eventually(lambda queue=queue: consuming(queue), f"a consumer on {queue}")
    except BaseException:
        consumer.terminate()
        raise
    return consumer
