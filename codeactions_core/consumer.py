"""``codeactions consumer``: project and permission events from RabbitMQ (COMPAT.md "Events").

Each kind of event has a durable topic exchange and a durable queue bound to it
with ``#``; the consumer declares them itself. A message is acknowledged once
its change is stored, or when it can never be stored (not JSON, refused by
:class:`~codeactions_core.services.projects.ProjectService`): such a message is
logged and dropped so that it never blocks the queue. Any other failure (the
store is down) leaves it unacknowledged: it is requeued after a pause that grows
up to :data:`MAX_PAUSE` seconds, and comes back once the store recovers.
"""

from __future__ import annotations

import json
import logging
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from kombu import Connection, Consumer, Exchange, Message, Queue
from kombu.mixins import ConsumerMixin

from codeactions_core.errors import CodeActionsError, ConfigurationError, InvalidInput
from codeactions_core.settings import PREFIX, Settings

if TYPE_CHECKING:
    from codeactions_core.services import Services

log = logging.getLogger(__name__)

JSON_CONTENT_TYPES = frozenset({"", "application/json", "text/json"})
ROUTING_KEY = "#"
PREFETCH = 10
FIRST_PAUSE = 0.5
MAX_PAUSE = 5.0
EXCERPT_BYTES = 120
STOP_CHECK_SECONDS = 0.2
"""How often a pause looks at whether a stop was asked for."""
DRAIN_SECONDS = 1.0
"""How long the loop waits for a frame before it looks at whether a stop was asked for."""
CONNECT_TIMEOUT = 5.0
HEARTBEAT = 30
RECONNECT_INTERVALS = {"interval_start": 1, "interval_step": 1, "interval_max": 5}


class Stopping(Exception):
    """Raised inside kombu's reconnection wait once a stop was asked for."""


class Malformed(ValueError):
    """The message body is not a JSON document this consumer may read."""


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


def require_broker_url(settings: Settings) -> str:
    """The broker URL, or a ConfigurationError naming the variable when it is unset."""
    if not settings.rabbitmq_url:
        raise ConfigurationError(
            f"{PREFIX}RABBITMQ_URL is not set: the consumer needs the AMQP URL of the broker, "
            "e.g. amqp://user:password@rabbitmq:5672/"
        )
    return settings.rabbitmq_url


def event_routes(settings: Settings, services: Services) -> list[EventRoute]:
    projects = services.projects
    return [
        EventRoute(
            "project", settings.project_exchange, settings.project_queue, projects.apply_project
        ),
        EventRoute(
            "permission", settings.permission_exchange, settings.permission_queue,
            projects.apply_permission,
        ),
    ]


def broker_connection(url: str) -> Connection:
    """A (not yet connected) connection to the broker; ConfigurationError for a bad URL."""
    connection = Connection(url, connect_timeout=CONNECT_TIMEOUT, heartbeat=HEARTBEAT)
    try:
        connection.transport  # resolves the URL's scheme to a transport
    except (KeyError, ImportError, ValueError) as exc:
        raise ConfigurationError(f"{PREFIX}RABBITMQ_URL: unsupported broker URL ({exc})") from None
    return connection


def broker_address(connection: Connection) -> str:
    """Host, port and virtual host of the broker, never its credentials."""
    port = connection.port or 5672
    return f"{connection.hostname}:{port} (vhost {connection.virtual_host or '/'})"


def content_type(message: Message) -> str:
    """The media type without parameters, lower case; '' when the message names none."""
    return (message.content_type or "").split(";", 1)[0].strip().lower()


def parse_body(message: Message) -> Any:
    """The JSON document a message carries; Malformed for another content type or bad JSON."""
    media_type = content_type(message)
    if media_type not in JSON_CONTENT_TYPES:
        raise Malformed(f"content type {media_type!r} is not JSON (refused without decoding)")
    try:
        return json.loads(message.body)
    except (ValueError, TypeError, RecursionError) as exc:
        raise Malformed(f"not JSON: {exc}") from None


def excerpt(body: Any) -> str:
    """The start of a body, safe to log."""
    raw = body if isinstance(body, (bytes, str)) else repr(body)
    if len(raw) <= EXCERPT_BYTES:
        return repr(raw)
    return f"{raw[:EXCERPT_BYTES]!r}… ({len(raw)} bytes)"


def describe(message: Message) -> str:
    """Where a message came from and what it looks like, for a log line."""
    info = message.delivery_info or {}
    redelivered = ", redelivered" if info.get("redelivered") else ""
    return (
        f"routing key {info.get('routing_key')!r}{redelivered}, "
        f"content type {message.content_type!r}, body {excerpt(message.body)}"
    )


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


class BrokerConsumer(ConsumerMixin):
    """A ConsumerMixin that reconnects by itself, logs a lost connection in one line and
    stops within about a second when asked (also while waiting to reconnect)."""

    connection: Connection
    connections = 0
    drain_seconds = DRAIN_SECONDS
    """How long one wait for a frame lasts before ``on_iteration`` runs again."""

    @property
    def address(self) -> str:
        return broker_address(self.connection)

    def stop(self) -> None:
        """Ask the loop to return (within about a second); safe in a signal handler."""
        self.should_stop = True

    def on_connection_error(self, exc: Exception, interval: float) -> None:
        log.warning("broker at %s unreachable (%s); retrying in %s s", self.address, exc, interval)

    def on_connection_revived(self) -> None:
        self.connections += 1
        if self.connections == 1:
            log.info("connected to the broker at %s", self.address)
        else:
            log.info(
                "reconnected to the broker at %s (connection %d)", self.address, self.connections
            )

    def stop_if_asked(self) -> None:
        """Called every second while kombu waits to reconnect."""
        if self.should_stop:
            raise Stopping()

    @contextmanager
    def establish_connection(self) -> Iterator[Connection]:
        """ConsumerMixin's, retrying every 1 to 5 s and giving up at once when stopped."""
        with self.create_connection() as conn:
            conn.ensure_connection(
                self.on_connection_error, self.connect_max_retries,
                callback=self.stop_if_asked, **RECONNECT_INTERVALS,
            )
            yield conn

    def run(self, _tokens: int = 1, **kwargs: Any) -> None:
        """ConsumerMixin.run, logging a lost connection in one line, returning once stopped."""
        errors = self.connection.connection_errors + self.connection.channel_errors
        while not self.should_stop:
            try:
                if self.restart_limit.can_consume(_tokens):
                    for _ in self.consume(limit=None, safety_interval=self.drain_seconds, **kwargs):
                        pass
                else:
                    time.sleep(self.restart_limit.expected_time(_tokens))
            except Stopping:
                return
            except errors as exc:
                if not self.should_stop:
                    log.warning(
                        "lost the connection to the broker at %s: %r; reconnecting",
                        self.address, exc,
                    )


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
    def from_settings(cls, settings: Settings, services: Services) -> EventConsumer:
        connection = broker_connection(require_broker_url(settings))
        return cls(connection, event_routes(settings, services), services.store.release)

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
        except Exception as exc:
            self.retry_later(route, message, exc)
        else:
            message.ack()
            self.backoff.reset()
            log.debug("stored a %s event (%s)", route.kind, describe(message))
        finally:
            self.release_store()

    def refuse(self, route: EventRoute, message: Message, exc: Exception) -> None:
        """Log a message that can never be stored, and acknowledge it."""
        reason = exc.message if isinstance(exc, CodeActionsError) else str(exc)
        log.warning("dropped a malformed %s event: %s (%s)", route.kind, reason, describe(message))
        message.ack()

    def retry_later(self, route: EventRoute, message: Message, exc: Exception) -> None:
        """Log a failure to store, requeue the message unacknowledged, and pause."""
        pause = self.backoff.next_pause()
        log.log(
            logging.WARNING if isinstance(exc, CodeActionsError) else logging.ERROR,
            "could not store a %s event, not acknowledged: %s: %s; "
            "requeued, retrying in %.1f s (%s)",
            route.kind, type(exc).__name__, exc, pause, describe(message),
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
        log.warning("dropped an unreadable event: %s (%s)", exc, describe(message))
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


@contextmanager
def stop_on_signals(consumer: BrokerConsumer) -> Iterator[None]:
    """SIGTERM and SIGINT ask ``consumer`` to stop; the previous handlers come back after."""
    def handle(signum: int, frame: Any) -> None:
        consumer.stop()

    previous = {signum: signal.signal(signum, handle) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def run_consumer(settings: Settings, services: Services) -> None:
    """Consume events until SIGTERM or SIGINT; every broker failure is retried meanwhile."""
    consumer = EventConsumer.from_settings(settings, services)
    routes = describe_routes(consumer.routes)
    log.info("event consumer for the broker at %s: %s", consumer.address, routes)
    try:
        with stop_on_signals(consumer):
            consumer.run()
    finally:
        consumer.connection.release()
    log.info("event consumer stopped")
