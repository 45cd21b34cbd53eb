"""A server process's claim on the runs it executes: no run is left hanging by a dead process.

Every run a process creates carries its ``owner`` and a ``lease_expires_at``. A timer
thread renews the leases of all the process's unfinished runs in one statement every
third of RUN_LEASE_SECONDS, and fails the unfinished runs of every owner whose lease
lapsed (a SIGKILLed or OOM-killed worker): within RUN_LEASE_SECONDS plus a third of it,
by whichever live process (or the scheduler) looks first. Runs without an owner (an async
run no worker took yet) are never failed by this rule.

The same thread replays the local outbox (:mod:`codeactions_core.services.outbox`): final
writes that found the database unreachable are written once it is back, in order.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from codeactions_core.errors import CodeActionsError
from codeactions_core.locks import new_holder
from codeactions_core.model import utcnow
from codeactions_core.store import RunRepository

log = logging.getLogger(__name__)

LEASE_EXPIRED = "abandoned: the server process running it stopped before it finished"
SERVER_RESTARTED = "abandoned: the server running it was restarted before it finished"
SHUTTING_DOWN = "server shutting down"
"""The reason a draining server gives the runs it could not finish (see ``fail_mine``)."""


def run_owner(instance: str = "") -> str:
    """This process's owner name: ``<instance>:<host>:<pid>:<random>`` (instance: the
    ``serve`` it belongs to, so that a restarted ``serve`` recognises its predecessor's)."""
    holder = new_holder()
    return f"{instance}:{holder}" if instance else holder


class RunLeases:
    """Renews this process's run leases and fails the runs of owners whose lease lapsed."""

    def __init__(
        self,
        runs: RunRepository,
        lease: timedelta,
        *,
        owner: str | None = None,
        release: Callable[[], None] = lambda: None,
        on_tick: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.owner = owner or run_owner()
        self.lease = lease
        self._runs = runs
        self._release = release
        self.on_tick = on_tick
        """Other periodic work of the same thread (the outbox replay)."""
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._start_lock = threading.Lock()
        self._failing = False  # the last renewal failed (logged once until it works again)

    @property
    def interval(self) -> float:
        return max(self.lease.total_seconds() / 3, 0.2)

    def until(self) -> datetime:
        """The lease a run created now gets."""
        return self._clock() + self.lease

    def start(self) -> None:
        """Start the timer thread (again in a forked child; idempotent otherwise)."""
        if self._thread is not None and self._pid == os.getpid():
            return
        with self._start_lock:
            if self._thread is not None and self._pid == os.getpid():
                return
            self._stop.clear()
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._loop, name="run-leases", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if (
            thread is not None
            and self._pid == os.getpid()
            and thread is not threading.current_thread()
        ):
            thread.join(timeout=5)

    def tick(self) -> tuple[int, int]:
        """Renew this process's leases, fail expired ones; (renewed, failed)."""
        try:
            now = self._clock()
            renewed = self._runs.renew_leases(self.owner, now + self.lease)
            failed = self._runs.fail_expired_leases(now, LEASE_EXPIRED)
        finally:
            self._release()
        if failed:
            log.warning("failed %d runs whose server process died (lease expired)", failed)
        return renewed, failed

    def fail_mine(self, reason: str = SHUTTING_DOWN) -> int:
        """Fail every queued or started run this process owns (a drain that ran out of
        time, before exiting); how many."""
        try:
            failed = self._runs.fail_owned(self.owner, reason)
        finally:
            self._release()
        if failed:
            log.warning("failed %d unfinished runs of this process: %s", failed, reason)
        return failed

    def _loop(self) -> None:
        while True:  # a first pass at once: a restarted process adopts what a dead one left
            try:
                self.tick()
                if self._failing:
                    log.info("run leases renewed again")
                self._failing = False
            except CodeActionsError as exc:
                if not self._failing:
                    log.error(
                        "renewing run leases failed (retried every %.1fs): %s",
                        self.interval,
                        exc.message,
                    )
                self._failing = True
            except Exception:
                log.exception("renewing run leases failed")
            try:
                self.on_tick()
            except Exception:
                log.exception("the run lease timer's other work failed")
            if self._stop.wait(self.interval):
                return
