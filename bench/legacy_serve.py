"""`codeactions serve` as it was before issue 13 (gunicorn gthread workers, a 30 s drain),
for bench/slow_clients.py to compare against in the same run."""

from __future__ import annotations

import sys

from codeactions_core.cli import main as cli
from codeactions_core.web import server


class GthreadServer(server.ApiServer):
    def __init__(self, settings, **overrides):
        super().__init__(
            settings,
            worker_class="gthread",
            threads=settings.request_threads,
            graceful_timeout=30,
            **overrides,
        )


server.ApiServer = GthreadServer

if __name__ == "__main__":
    sys.exit(cli.main(["serve"]))
