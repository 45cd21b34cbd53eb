"""Sandboxes started ahead of need, so a run skips process and namespace setup."""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Mapping
from typing import Any

from codeactions_core.errors import Unavailable
from codeactions_core.execution.sandbox import Report, Sandbox, SandboxSpec, Zygote

log = logging.getLogger(__name__)


class WarmPool:
    """Keeps ``size`` sandboxes of one spec ready; a run takes one or, when none is
    ready, spawns its own. A background thread refills the pool."""

    def __init__(self, zygote: Zygote, spec: SandboxSpec, size: int) -> None:
        self._zygote = zygote
        self._spec = spec
        self._size = size
        self._ready: collections.deque[Sandbox] = collections.deque()
        self._wanted = threading.Condition()
        self._stopped = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._size and self._thread is None:
            self._thread = threading.Thread(target=self._refill, name="warm-pool", daemon=True)
            self._thread.start()

    def run(self, job: Mapping[str, Any], timeout: float) -> Report:
        return self.take().run(job, timeout)

    def take(self) -> Sandbox:
        with self._wanted:
            sandbox = self._ready.popleft() if self._ready else None
            self._wanted.notify()
        if sandbox is None:
            sandbox = self._zygote.spawn(self._spec)
        return sandbox

    def stop(self) -> None:
        with self._wanted:
            self._stopped = True
            self._wanted.notify_all()
            ready, self._ready = list(self._ready), collections.deque()
        for sandbox in ready:
            sandbox.discard()

    def _refill(self) -> None:
        while True:
            with self._wanted:
                while not self._stopped and len(self._ready) >= self._size:
                    self._wanted.wait()
                if self._stopped:
                    return
            try:
                sandbox = self._zygote.spawn(self._spec)
            except Unavailable as exc:
                log.warning("could not start a warm sandbox: %s", exc.message)
                with self._wanted:
                    self._wanted.wait(timeout=1.0)  # back off; a run still spawns its own
                continue
            with self._wanted:
                if self._stopped:
                    sandbox.discard()
                    return
                self._ready.append(sandbox)
