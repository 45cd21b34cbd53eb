"""Async runs over RabbitMQ: publishing them (with publisher confirms) and taking them.

Unlike flow announcements (``flows/dispatch.py``), a message here *is* the work:
it carries what the code gets (params, body, headers), and it is acknowledged only
after the run's final state (and its callback) is stored. A worker that dies holding
one leaves it unacknowledged, so the broker hands it to another worker, flagged
``redelivered``; the store counts attempts and runs it at most once more
(:mod:`codeactions_core.services.async_runs`).

Runs execute in a thread pool; kombu channels are not thread-safe, so the threads
hand their verdicts (ack or requeue) back to the consumer's thread, which sends them
between waits for frames (every ``drain_seconds``).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kombu import Connection, Consumer, Message, Queue

from codeactions_core.broker import (
    BrokerConsumer,
    LazyConnection,
    Malformed,
    broker_connection,
    describe_message,
    durable_queue,
    parse_body,
    publish_persistent,
)
from codeactions_core.errors import ConfigurationError, Unavailable
from codeactions_core.settings import Settings

log = logging.getLogger(__name__)

ROUTING_KEY = "run"
PUBLISH_TIMEOUT = 5.0
ACK_INTERVAL = 0.05
"""Longest an acknowledgement waits for the consumer's thread."""
PREFETCH_PER_THREAD = 2
"""Messages held per thread: one running, one waiting, so that a thread that finishes finds
its next run at once instead of after its acknowledgement's round trip."""
REQUEUE_PAUSE = 1.0
"""Pause before a run that could not be finished (the store failed) goes back to the queue,
so that an unreachable database does not make runs bounce between workers at full speed."""


def run_queue(settings: Settings) -> Queue:
    """The durable queue of async runs, on its durable direct exchange."""
    return durable_queue(settings.async_run_exchange, settings.async_run_queue, ROUTING_KEY)


class PublishRuns:
    """Publishes async runs persistently; returns once the broker confirmed each one."""

    def __init__(self, settings: Settings) -> None:
        self._queue = run_queue(settings)
        self._connection = LazyConnection(settings.rabbitmq_url, confirm_publish=True)

    def publish(self, job: dict[str, Any]) -> None:
        """Unavailable when the broker did not take (and confirm) the message."""
        try:
            publish_persistent(
                self._connection.get(), self._queue, job, timeout=PUBLISH_TIMEOUT, retries=2
            )
        except ConfigurationError:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever the broker did, the caller gets 503
            raise Unavailable(
                f"the broker did not take the async run ({type(exc).__name__}: {exc}); "
                "try again later"
            ) from None

    def close(self) -> None:
        self._connection.close()


Execute = Callable[[dict[str, Any], bool], None]
"""Runs one job to its stored end; ``True`` when the broker says it was redelivered.
Raising leaves the message to be requeued."""


class RunConsumer(BrokerConsumer):
    """Takes async runs, ``threads`` at a time. ``stop`` stops taking new ones and lets the
    running ones finish (and be acknowledged) before ``run`` returns."""

    drain_seconds = ACK_INTERVAL

    def __init__(self, settings: Settings, execute: Execute, threads: int) -> None:
        self.connection = broker_connection(settings.rabbitmq_url)
        self._queue = run_queue(settings)
        self._execute = execute
        self._threads = threads
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="async-run")
        self._verdicts: queue.SimpleQueue[tuple[Message, bool]] = queue.SimpleQueue()
        self._in_flight = 0
        self._draining = False
        self._consumers: list[Consumer] = []
        self.ready = threading.Event()

    def get_consumers(self, consumer_class: type[Consumer], channel: Any) -> list[Consumer]:
        return [
            consumer_class(
                queues=[self._queue],
                on_message=self.on_message,
                prefetch_count=PREFETCH_PER_THREAD * self._threads,
                no_ack=False,
            )
        ]

    def on_consume_ready(
        self, connection: Connection, channel: Any, consumers: list, **kwargs: Any
    ) -> None:
        self._consumers = consumers
        self.ready.set()
        log.info("taking async runs from queue %r at %s", self._queue.name, self.address)

    def stop(self) -> None:
        """Finish the runs in hand, then return from ``run``; safe in a signal handler."""
        self._draining = True

    def on_message(self, message: Message) -> None:
        if self._draining:
            message.requeue()
            return
        try:
            job = parse_body(message)
            if not isinstance(job, dict) or not isinstance(job.get("run_id"), str):
                raise Malformed("expected a JSON object with a run_id")
        except Malformed as exc:
            log.warning(
                "dropped an unreadable async run message: %s (%s)", exc, describe_message(message)
            )
            message.ack()
            return
        redelivered = bool((message.delivery_info or {}).get("redelivered"))
        self._in_flight += 1
        self._executor.submit(self._work, message, job, redelivered)

    def _work(self, message: Message, job: dict[str, Any], redelivered: bool) -> None:
        if self._draining:  # held but not started: back to the queue for another worker
            self._verdicts.put((message, False))
            return
        done = False
        try:
            self._execute(job, redelivered)
            done = True
        except Exception:
            log.exception("async run %s could not be finished here; requeued", job.get("run_id"))
            time.sleep(REQUEUE_PAUSE)
        self._verdicts.put((message, done))

    def on_iteration(self) -> None:
        """Send the verdicts the threads reached; once stopping and idle, end the loop."""
        while True:
            try:
                message, done = self._verdicts.get_nowait()
            except queue.Empty:
                break
            self._in_flight -= 1
            try:
                if done:
                    message.ack()
                else:
                    message.requeue()
            except Exception as exc:  # noqa: BLE001 - the connection went: the broker requeues it
                log.warning("could not settle an async run message: %r", exc)
        if self._draining:
            for consumer in self._consumers:
                try:
                    consumer.cancel()
                except Exception as exc:  # noqa: BLE001 - a lost connection cancelled it already
                    log.debug("could not cancel the async run consumer: %r", exc)
            self._consumers = []
            if self._in_flight <= 0:
                self.should_stop = True

    def on_decode_error(self, message: Message, exc: Exception) -> None:
        log.warning(
            "dropped an unreadable async run message: %s (%s)", exc, describe_message(message)
        )
        message.ack()

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self.connection.release()
