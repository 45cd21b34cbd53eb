"""The gunicorn worker of ``codeactions serve``: uvicorn's event loop holds the connections,
the Falcon app runs in a thread pool behind it (see ``codeactions_core.web.asgi``).

SIGTERM: readiness turns 503 at once, the listening sockets close (new connections are
refused), open requests may finish for up to GRACEFUL_TIMEOUT, then the runs this process
still owns are recorded failed "server shutting down" and the process exits.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import sys
import time
from types import FrameType
from typing import Any, ClassVar

from uvicorn.server import Server
from uvicorn_worker import UvicornWorker

from codeactions_core.drain import DRAIN, IN_FLIGHT, finish_draining
from codeactions_core.settings import Settings
from codeactions_core.web.asgi import Front, head_deadline_protocol

log = logging.getLogger(__name__)


class DrainingServer(Server):
    """uvicorn's server, telling this process it drains as soon as a stop signal arrives.

    The signal is not recorded for uvicorn to raise again once it has served (that would end
    the process before ``ApiWorker`` fails the runs it still owns)."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        DRAIN.begin()
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        else:
            self.should_exit = True


class ApiWorker(UvicornWorker):
    settings: ClassVar[Settings | None] = None
    """Set by ``ApiServer`` before the workers are forked."""
    services: ClassVar[Any] = None
    """This worker's ``codeactions_core.wiring.Services`` once its app is loaded (None before)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        settings = self.settings or Settings.from_env()
        self.CONFIG_KWARGS = {
            "loop": "auto",  # uvloop when installed
            "http": head_deadline_protocol(settings.header_timeout, settings.max_connections),
            "ws": "none",
            "lifespan": "on",
            "interface": "asgi3",
            "timeout_graceful_shutdown": settings.graceful_timeout,
            "access_log": settings.log_level == "debug",
        }
        super().__init__(*args, **kwargs)

    def load_wsgi(self) -> None:
        super().load_wsgi()
        settings = self.settings or Settings.from_env()
        self.wsgi = Front(
            self.wsgi, threads=settings.request_threads, body_timeout=settings.body_timeout
        )

    async def _serve(self) -> None:
        self.config.app = self.wsgi
        server = self._server = DrainingServer(config=self.config)
        self._install_sigquit_handler()
        await server.serve(sockets=self.sockets)
        if not server.started:
            from gunicorn.arbiter import Arbiter

            sys.exit(Arbiter.WORKER_BOOT_ERROR)

    async def callback_notify(self) -> None:
        """The heartbeat to the master (every few seconds); without a master (it was killed),
        drain and stop rather than serve on as an orphan."""
        if os.getppid() != self.ppid:
            log.warning("the gunicorn master is gone: draining")
            self._server.handle_exit(signal.SIGTERM, None)
        self.notify()

    def run(self) -> None:
        super().run()
        self._finish()

    def _finish(self) -> None:
        """Fail what this process still owns. With nothing left it returns, and gunicorn ends
        the worker as usual (services closed, exit handlers run); with runs still going their
        threads would hold the process, so it runs the exit handlers itself (the sandbox
        network restores the host's ip_forward in one) and leaves at once."""
        settings = self.settings or Settings.from_env()
        began = DRAIN.began_at if DRAIN.began_at is not None else time.monotonic()
        services = self.services
        if services is None:
            return
        outbox = services.runs.outbox
        ended = outbox.holds if outbox is not None else (lambda run_id: False)
        left = finish_draining(
            IN_FLIGHT, services.store.runs, began + settings.graceful_timeout, ended=ended
        )
        try:  # best effort: what it cannot write now waits in the outbox for the next process
            services.runs.replay_outbox()
        except Exception:  # a shutting-down process only logs it
            log.exception("the outbox could not be replayed before exit")
        if not left:
            return
        log.info("worker %s stopped with %d runs cut short", os.getpid(), left)
        atexit._run_exitfuncs()
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
