"""The AMQP plumbing the broker's consumers and publishers share (kombu, RabbitMQ).

A connection that names the broker without its credentials, the JSON bodies every queue
carries, a ``ConsumerMixin`` that reconnects by itself and stops within about a second,
SIGTERM/SIGINT handling, and the publishers' durable queue, lazy connection and persistent
publish. Users: the project events consumer
(``codeactions_core.project_events``), the flow announcements (``flows.dispatch``) and
the async runs' queue (``async_queue``).
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kombu import Connection, Exchange, Message, Queue
from kombu.mixins import ConsumerMixin
from kombu.pools import producers

from codeactions_core.errors import ConfigurationError
from codeactions_core.settings import PREFIX, Settings

log = logging.getLogger(__name__)

JSON_CONTENT_TYPES = frozenset({"", "application/json", "text/json"})
EXCERPT_BYTES = 120
DRAIN_SECONDS = 1.0
"""How long the loop waits for a frame before it looks at whether a stop was asked for."""
CONNECT_TIMEOUT = 5.0
HEARTBEAT = 30
RECONNECT_INTERVALS = {"interval_start": 1, "interval_step": 1, "interval_max": 5}


class Stopping(Exception):
    """Raised inside kombu's reconnection wait once a stop was asked for."""


class Malformed(ValueError):
    """The message body is not a JSON document this consumer may read."""


def require_broker_url(settings: Settings) -> str:
    """The broker URL, or a ConfigurationError naming the variable when it is unset."""
    if not settings.rabbitmq_url:
        raise ConfigurationError(
            f"{PREFIX}RABBITMQ_URL is not set: the consumer needs the AMQP URL of the broker, "
            "e.g. amqp://user:password@rabbitmq:5672/"
        )
    return settings.rabbitmq_url


def broker_connection(url: str) -> Connection:
    """A (not yet connected) connection to the broker; ConfigurationError for a bad URL."""
    connection = Connection(url, connect_timeout=CONNECT_TIMEOUT, heartbeat=HEARTBEAT)
    try:
        _ = connection.transport  # resolves the URL's scheme to a transport
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


def describe_message(message: Message) -> str:
    """Where a message came from and what it looks like, for a log line."""
    info = message.delivery_info or {}
    redelivered = ", redelivered" if info.get("redelivered") else ""
    return (
        f"routing key {info.get('routing_key')!r}{redelivered}, "
        f"content type {message.content_type!r}, body {excerpt(message.body)}"
    )


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
                self.on_connection_error,
                self.connect_max_retries,
                callback=self.stop_if_asked,
                **RECONNECT_INTERVALS,
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
                        self.address,
                        exc,
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


def durable_queue(exchange: str, queue: str, routing_key: str) -> Queue:
    """A durable queue bound to its durable direct exchange."""
    bound_to = Exchange(exchange, type="direct", durable=True)
    return Queue(queue, exchange=bound_to, routing_key=routing_key, durable=True)


def publish_persistent(
    connection: Connection, queue: Queue, body: Any, *, timeout: float, retries: int
) -> None:
    """Publish ``body`` as JSON, persistent, to the durable ``queue`` (declared first) with a
    pooled producer of ``connection``: waits up to ``timeout`` seconds for a producer and
    retries the publish ``retries`` times (0.5 s apart at most 1 s)."""
    with producers[connection].acquire(block=True, timeout=timeout) as producer:
        producer.publish(
            body,
            exchange=queue.exchange,
            routing_key=queue.routing_key,
            declare=[queue],
            serializer="json",
            delivery_mode=2,
            retry=True,
            retry_policy={
                "max_retries": retries,
                "interval_start": 0,
                "interval_step": 0.5,
                "interval_max": 1,
            },
        )


class LazyConnection:
    """A publisher's connection, made on first use: after the fork of a server's worker
    process, never inherited across it."""

    def __init__(self, url: str, **transport_options: Any) -> None:
        self._url = url
        self._transport_options = transport_options
        self._connection: Connection | None = None
        self._lock = threading.Lock()

    def get(self) -> Connection:
        with self._lock:
            if self._connection is None:
                connection = broker_connection(self._url)
                if self._transport_options:
                    connection = connection.clone(transport_options=self._transport_options)
                self._connection = connection
            return self._connection

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.release()
                self._connection = None
