"""The installed language runtimes, by language: started once, asked whether they can run."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from codeactions_core.errors import Unavailable
from codeactions_core.execution.protections import check_required, describe_protections
from codeactions_core.execution.runtime import Runtime, RuntimeHealth

log = logging.getLogger(__name__)


class Runtimes:
    """The installed runtimes by language."""

    def __init__(self, runtimes: Iterable[Runtime] = (), *, required: Iterable[str] = ()) -> None:
        self.required = tuple(required)
        """Protections the sandbox must have (SANDBOX_REQUIRE): start fails without them."""
        self._started = False
        self._start_lock = threading.Lock()
        self._by_language: dict[str, Runtime] = {}
        for runtime in runtimes:
            self._by_language.setdefault(runtime.language, runtime)  # the first plugin called wins

    def languages(self) -> list[str]:
        return sorted(self._by_language)

    def __iter__(self):
        return iter(self._by_language.values())

    def __getitem__(self, language: str) -> Runtime:
        return self._by_language[language]

    def ready(self, language: str) -> Runtime:
        """The runtime of ``language``; Unavailable (with the reason) when it cannot run now."""
        runtime = self._by_language.get(language)
        if runtime is None:
            raise Unavailable(f"no runtime for language {language!r} is installed on this server")
        self.start()
        health = runtime.health()
        if not health.ready:
            raise Unavailable(f"the {language} runtime is unavailable: {health.message}")
        return runtime

    def health(self) -> dict[str, RuntimeHealth]:
        return {language: runtime.health() for language, runtime in self._by_language.items()}

    @property
    def started(self) -> bool:
        """Whether ``start`` ran (server workers at boot; elsewhere on first use)."""
        return self._started

    def start(self) -> None:
        """Start every runtime once (server workers at boot; elsewhere on first use)."""
        if self._started:
            return
        with self._start_lock:
            if self._started:
                return
            for runtime in self._by_language.values():
                try:
                    runtime.start()
                except Exception:  # a broken runtime must not take the others down
                    log.exception("the %s runtime failed to start", runtime.language)
                health = runtime.health()
                if health.ready:
                    log.info("%s runtime ready (%s)", runtime.language, health.message)
                else:
                    log.warning("%s runtime unavailable: %s", runtime.language, health.message)
            self._started = True
            protections = next((h.details for h in self.health().values() if h.details), None)
            if protections:
                log.info("sandbox protections: %s", describe_protections(protections))
                if protections.get("network") == "host":
                    log.warning(
                        "SANDBOX_NETWORK=host: user code shares the server's network (loopback "
                        "services, private ranges, cloud metadata). For development only."
                    )
            if self.required:
                check_required(protections or {}, self.required)

    def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        for runtime in self._by_language.values():
            try:
                runtime.stop()
            except Exception:
                log.exception("the %s runtime failed to stop", runtime.language)
