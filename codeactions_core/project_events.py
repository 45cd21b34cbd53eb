"""Project and permission events from RabbitMQ (COMPAT.md "Events"), ``codeactions consumer``.

Each kind of event has a durable topic exchange and a durable queue bound to it
with ``#``; the consumer declares them itself. A message is acknowledged once
its change is stored, or when it can never be stored (not JSON, refused by
:class:`~codeactions_core.services.projects.ProjectService`): such a message is
logged and dropped so that it never blocks the queue. Any other failure (the
store is down) leaves it unacknowledged: it is requeued after a pause that grows
up to :data:`MAX_PAUSE` seconds, and comes back once the store recovers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from kombu import Connection, Consumer, Exchange, Message, Queue

from codeactions_core.broker import (
    BrokerConsumer,
    Malformed,
    broker_connection,
    describe_message,
    parse_body,
    require_broker_url,
    stop_on_signals,
)
from codeactions_core.errors import CodeActionsError, InvalidInput
from codeactions_core.services.projects import ProjectService
from codeactions_core.settings import Settings

log = logging.getLogger(__name__)

ROUTING_KEY = "#"
PREFETCH = 10
FIRST_PAUSE = 0.5
MAX_PAUSE = 5.0
STOP_CHECK_SECONDS = 0.2
"""How often a pause looks at whether a stop was asked for."""


@dataclass(frozen=True)
class EventRoute:
    """One kind of event: where it arrives and what stores it."""

    kind: str
    exchange: str
    queue: str
    apply: Callable[[Any], object]

    def declaration(self) -> Queue:
        """The durable queue, bound with ``#`` to the durable topic exchange."""
        exchange = Exchange(self.exchange, type="topic", durable=True)
        return Queue(self.queue, exchange=exchange, routing_key=ROUTING_KEY, durable=True)


def event_routes(settings: Settings, projects: ProjectService) -> list[EventRoute]:
    return [
        EventRoute(
            "project", settings.project_exchange, settings.project_queue, projects.apply_project
        ),
        EventRoute(
            "permission",
            settings.permission_exchange,
            settings.permission_queue,
            projects.apply_permission,
        ),
    ]


class Backoff:
    """Pauses that double from FIRST_PAUSE up to MAX_PAUSE while failures follow each other."""

    def __init__(self, first: float = FIRST_PAUSE, most: float = MAX_PAUSE) -> None:
        self.first = first
        self.most = most
        self.failures = 0

    def next_pause(self) -> float:
        self.failures += 1
        return min(self.most, self.first * 2 ** (self.failures - 1))

    def reset(self) -> None:
        self.failures = 0


class EventConsumer(BrokerConsumer):
    """Applies project and permission events to the store, one message at a time."""

    def __init__(
        self, connection: Connection, routes: list[EventRoute], release: Callable[[], None]
    ) -> None:
        self.connection = connection
        self.routes = routes
        self.release = release
        self.backoff = Backoff()
        self.connections = 0

    @classmethod
    def from_settings(
        cls, settings: Settings, projects: ProjectService, release: Callable[[], None]
    ) -> EventConsumer:
        connection = broker_connection(require_broker_url(settings))
        return cls(connection, event_routes(settings, projects), release)

    def get_consumers(self, consumer_class: type[Consumer], channel: Any) -> list[Consumer]:
        return [
            consumer_class(
                queues=[route.declaration()],
                on_message=partial(self.on_message, route),
                prefetch_count=PREFETCH,
                no_ack=False,
            )
            for route in self.routes
        ]

    def on_message(self, route: EventRoute, message: Message) -> None:
        """Store the event, then acknowledge; drop what can never be stored; retry the rest."""
        try:
            route.apply(parse_body(message))
        except (Malformed, InvalidInput) as exc:
            self.refuse(route, message, exc)
        except Exception as exc:  # noqa: BLE001  (the consumer survives anything; retried later)
            self.retry_later(route, message, exc)
        else:
            message.ack()
            self.backoff.reset()
            log.debug("stored a %s event (%s)", route.kind, describe_message(message))
        finally:
            self.release_store()

    def refuse(self, route: EventRoute, message: Message, exc: Exception) -> None:
        """Log a message that can never be stored, and acknowledge it."""
        reason = exc.message if isinstance(exc, CodeActionsError) else str(exc)
        log.warning(
            "dropped a malformed %s event: %s (%s)", route.kind, reason, describe_message(message)
        )
        message.ack()

    def retry_later(self, route: EventRoute, message: Message, exc: Exception) -> None:
        """Log a failure to store, requeue the message unacknowledged, and pause."""
        pause = self.backoff.next_pause()
        log.log(
            logging.WARNING if isinstance(exc, CodeActionsError) else logging.ERROR,
            "could not store a %s event, not acknowledged: %s: %s; "
            "requeued, retrying in %.1f s (%s)",
            route.kind,
            type(exc).__name__,
            exc,
            pause,
            describe_message(message),
            exc_info=not isinstance(exc, CodeActionsError),
        )
        message.requeue()
        self.pause(pause)

    def pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or less when a stop is asked for meanwhile."""
        until = time.monotonic() + seconds
        while not self.should_stop and (left := until - time.monotonic()) > 0:
            time.sleep(min(STOP_CHECK_SECONDS, left))

    def release_store(self) -> None:
        """Give the database connection back to its pool; a failure here is only logged."""
        try:
            self.release()
        except Exception:
            log.exception("could not release the database connection")

    def on_decode_error(self, message: Message, exc: Exception) -> None:
        """kombu could not even read the message (e.g. bad compression): log and drop it."""
        log.warning("dropped an unreadable event: %s (%s)", exc, describe_message(message))
        message.ack()

    def on_consume_ready(
        self, connection: Connection, channel: Any, consumers: list, **kwargs: Any
    ) -> None:
        log.info("consuming from %s", ", ".join(route.queue for route in self.routes))


def describe_routes(routes: list[EventRoute]) -> str:
    return "; ".join(
        f"{route.kind} events: exchange {route.exchange!r} (topic, durable) "
        f"-> queue {route.queue!r} bound with {ROUTING_KEY!r}"
        for route in routes
    )


def run_consumer(settings: Settings, projects: ProjectService, release: Callable[[], None]) -> None:
    """Consume events until SIGTERM or SIGINT; every broker failure is retried meanwhile.
    ``release`` gives the store's connection back after each message."""
    consumer = EventConsumer.from_settings(settings, projects, release)
    routes = describe_routes(consumer.routes)
    log.info("event consumer for the broker at %s: %s", consumer.address, routes)
    try:
        with stop_on_signals(consumer):
            consumer.run()
    finally:
        consumer.connection.release()
    log.info("event consumer stopped")
