"""The old service's engine, reduced to its cost: a fresh interpreter per run that
imports boto3, requests and psycopg2, connects to PostgreSQL, then runs the action."""

import json
import sys
from typing import ClassVar

import boto3  # noqa: F401  (imported by every run of the old engine)
import psycopg2
import requests  # noqa: F401

connection = psycopg2.connect(sys.argv[1])
namespace: dict = {}
exec(sys.argv[2], namespace)  # noqa: S102  (running the action's code is the engine's job)


class Result:
    value = ""

    def set(self, value, status_code=200, content_type="text"):
        self.value = value if isinstance(value, str) else json.dumps(value)


class Engine:
    params: ClassVar[dict] = {}
    result = Result()


engine = Engine()
namespace["Run"](engine)
connection.close()
print(engine.result.value, end="")
