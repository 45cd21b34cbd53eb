"""Announcing executions that are due, and taking the announcements (RabbitMQ).

The store is the truth about executions; a message only says "execution X is
due", so that a worker starts it at once instead of at its next look into the
store. A message lost (the broker down while an execution starts, a worker
killed after taking one) therefore loses nothing: the execution is still due,
and a worker's execution driver finds it at its next look into the store.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Protocol

from kombu import Connection, Consumer, Message, Queue

from codeactions_core.broker import (
    BrokerConsumer,
    LazyConnection,
    broker_connection,
    describe_message,
    durable_queue,
    publish_persistent,
)
from codeactions_core.flows.driver import ExecutionDriver
from codeactions_core.settings import Settings

log = logging.getLogger(__name__)

ROUTING_KEY = "due"
PUBLISH_TIMEOUT = 2.0


class Dispatcher(Protocol):
    def dispatch(self, execution_id: str) -> None:
        """Tell whoever drives executions that this one is due now (best effort)."""


class DriveHere:
    """The server process drives executions itself (no broker)."""

    def __init__(self, driver: ExecutionDriver) -> None:
        self._driver = driver

    def dispatch(self, execution_id: str) -> None:
        if not self._driver.submit(execution_id):
            self._driver.kick()


class LeaveToWorkers:
    """No broker and the server does not drive: workers find executions in the store."""

    def dispatch(self, execution_id: str) -> None:
        pass


def due_queue(settings: Settings) -> Queue:
    """The durable queue of due executions, on its durable direct exchange."""
    return durable_queue(settings.flow_exchange, settings.flow_queue, ROUTING_KEY)


class Announce:
    """Publishes ``{"execution_id": ...}`` persistently to the due queue."""

    def __init__(self, settings: Settings) -> None:
        self._queue = due_queue(settings)
        self._connection = LazyConnection(settings.rabbitmq_url)

    def dispatch(self, execution_id: str) -> None:
        try:
            publish_persistent(
                self._connection.get(),
                self._queue,
                {"execution_id": execution_id},
                timeout=PUBLISH_TIMEOUT,
                retries=1,
            )
        except Exception as exc:  # noqa: BLE001 - stored and due: a worker's driver finds it
            log.warning(
                "could not announce flow execution %s to the broker (%s: %s); "
                "workers pick it up from the store",
                execution_id,
                type(exc).__name__,
                exc,
            )

    def close(self) -> None:
        self._connection.close()


class DueConsumer(BrokerConsumer):
    """Hands each announced execution to the execution driver and acknowledges it. When every
    thread is busy the announcement is dropped: the execution stays due in the store, and a
    driver (this worker's or another's) takes it as soon as a thread is free."""

    def __init__(self, settings: Settings, driver: ExecutionDriver) -> None:
        self.connection = broker_connection(settings.rabbitmq_url)
        self._queue = due_queue(settings)
        self._prefetch = settings.flow_worker_threads
        self._driver = driver

    def get_consumers(self, consumer_class: type[Consumer], channel: Any) -> list[Consumer]:
        return [
            consumer_class(
                queues=[self._queue],
                on_message=self.on_message,
                prefetch_count=self._prefetch,
                no_ack=False,
            )
        ]

    def on_message(self, message: Message) -> None:
        try:
            execution_id = str(json.loads(message.body)["execution_id"])
        except (ValueError, TypeError, KeyError) as exc:
            log.warning(
                "dropped an unreadable flow announcement: %s (%s)", exc, describe_message(message)
            )
        else:
            if not self._driver.submit(execution_id):
                self._driver.kick()  # busy or driving it already: the store keeps it due
        message.ack()

    def on_decode_error(self, message: Message, exc: Exception) -> None:
        log.warning(
            "dropped an unreadable flow announcement: %s (%s)", exc, describe_message(message)
        )
        message.ack()

    def on_consume_ready(
        self, connection: Connection, channel: Any, consumers: list, **kwargs: Any
    ) -> None:
        log.info("taking due flow executions from queue %r at %s", self._queue.name, self.address)
