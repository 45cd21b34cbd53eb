"""Baseline (b): the old service's strategy behind the same gunicorn settings.

gunicorn 'bench.apps.old_strategy:create_app("postgres://…")'
"""

import subprocess
import sys
from pathlib import Path

import falcon

ENGINE = str(Path(__file__).with_name("old_engine.py"))
SOURCE = 'def Run(engine):\n    engine.result.set("hi")\n'


class OldRun:
    def __init__(self, database: str) -> None:
        self._database = database

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        done = subprocess.run(
            [sys.executable, ENGINE, self._database, SOURCE],
            capture_output=True,
            text=True,
            check=True,
        )
        resp.content_type = falcon.MEDIA_TEXT
        resp.text = done.stdout


def create_app(database: str) -> falcon.App:
    app = falcon.App()
    app.add_route("/run", OldRun(database))
    return app
