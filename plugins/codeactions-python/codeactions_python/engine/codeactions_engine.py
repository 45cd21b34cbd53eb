"""The Python engine harness: what runs user code inside the sandbox (stdlib only).

The sandbox zygote imports this module once; every sandboxed child then calls
``serve(job_fd, outcome_fd)``: the job arrives as JSON on ``job_fd``, the
outcome leaves as JSON on ``outcome_fd`` (its shape is documented in
``codeactions_core/execution/outcome.py``). User code gets the engine API of
ENGINE_API.md, unchanged from the old service::

    def Run(engine):
        engine.result.set({"hi": engine.params.get("name")}, content_type="json")

Code without a ``Run`` function runs as a script; its standard output is the result.
"""

from __future__ import annotations

# Imported here, once, so that user code importing them costs nothing per run.
import base64
import collections  # noqa: F401
import csv  # noqa: F401
import datetime  # noqa: F401
import decimal  # noqa: F401
import hashlib  # noqa: F401
import hmac  # noqa: F401
import http.client  # noqa: F401
import itertools  # noqa: F401
import json
import linecache
import math  # noqa: F401
import os
import random  # noqa: F401
import re  # noqa: F401
import select
import string  # noqa: F401
import sys
import time  # noqa: F401
import traceback
import types
import typing  # noqa: F401
import urllib.parse
import urllib.request  # noqa: F401
import uuid  # noqa: F401

ACTION_FILE = "action.py"
MAX_LOG_LINES = 1000
MAX_LOG_CONTENT = 8000


class Params:
    """Query parameters: ``get`` answers ``None`` for a missing one."""

    def __init__(self, params: dict) -> None:
        self._params = dict(params)

    def get(self, key, default=None):
        return self._params.get(key, default)

    def items(self):
        return self._params.items()

    def keys(self):
        return self._params.keys()

    def values(self):
        return self._params.values()

    def __getitem__(self, key):
        return self._params[key]

    def __contains__(self, key) -> bool:
        return key in self._params

    def __iter__(self):
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)

    def __repr__(self) -> str:
        return f"Params({self._params!r})"


class Header:
    """Request headers: ``get`` gives the first value (``""`` when absent), any case."""

    def __init__(self, headers: dict) -> None:
        self._headers = {name: list(values) for name, values in headers.items()}
        self._by_lower = {name.lower(): values for name, values in self._headers.items()}

    def get(self, key, default=""):
        values = self._by_lower.get(str(key).lower())
        return values[0] if values else default

    def values_of(self, key) -> list:
        return list(self._by_lower.get(str(key).lower(), []))

    def items(self):
        return self._headers.items()

    def keys(self):
        return self._headers.keys()

    def __contains__(self, key) -> bool:
        return str(key).lower() in self._by_lower

    def __iter__(self):
        return iter(self._headers)

    def __len__(self) -> int:
        return len(self._headers)

    def __repr__(self) -> str:
        return f"Header({self._headers!r})"


class Log:
    """``debug``, ``info`` and ``error`` lines, stored with the run."""

    def __init__(self, max_lines: int = MAX_LOG_LINES) -> None:
        self.lines: list[list[str]] = []
        self.dropped = 0
        self._max_lines = max_lines

    def _add(self, kind: str, content) -> None:
        if len(self.lines) >= self._max_lines:
            self.dropped += 1
            return
        self.lines.append([kind, str(content)[:MAX_LOG_CONTENT]])

    def debug(self, content="") -> None:
        self._add("debug", content)

    def info(self, content="") -> None:
        self._add("info", content)

    def error(self, content="") -> None:
        self._add("error", content)


class Result:
    """What the run answers: ``set`` again replaces the earlier value.

    Bytes are a file to serve (base64 across the wire); ``headers`` are response headers
    (name to a value or a list of values), which the server checks."""

    def __init__(self) -> None:
        self.value: str | None = None
        self.status_code = 200
        self.content_type = "text"
        self.headers: dict = {}
        self.encoding: str | None = None

    def set(self, value="", status_code=200, content_type="text", headers=None) -> None:
        encoding = None
        if isinstance(value, str):
            text = value
        elif isinstance(value, (bytes, bytearray, memoryview)):
            text, encoding = base64.b64encode(bytes(value)).decode("ascii"), "base64"
        else:
            try:
                text = json.dumps(value)
            except (TypeError, ValueError):
                text = str(value)
        self.value, self.encoding = text, encoding
        self.status_code = status_code
        self.content_type = content_type
        self.headers = response_headers(headers)


def response_headers(headers) -> dict:
    """``headers`` as the outcome carries them: name to list of text values."""
    if headers is None:
        return {}
    if not hasattr(headers, "items"):
        raise TypeError(
            f"headers must be a dict of name to value (or list of values), "
            f"not {type(headers).__name__}"
        )
    return {
        str(name): [str(item) for item in value]
        if isinstance(value, (list, tuple))
        else [str(value)]
        for name, value in headers.items()
    }


class Secrets:
    """The secrets of the code's project (``get`` answers ``None`` for an unknown name)."""

    def __init__(self, secrets: dict | None = None) -> None:
        self._secrets = dict(secrets or {})

    def get(self, key, default=None):
        return self._secrets.get(key, default)

    def has(self, key) -> bool:
        return key in self._secrets

    def keys(self) -> list:
        return list(self._secrets)

    def __getitem__(self, key):
        if key not in self._secrets:
            raise KeyError(f"Secret '{key}' not found")
        return self._secrets[key]

    def __contains__(self, key) -> bool:
        return key in self._secrets


class Request:
    def __init__(self, params: Params, body: str, header: Header, log: Log) -> None:
        self.params = params
        self.body = body
        self.header = header
        self.log = log


class Engine:
    """What ``Run(engine)`` receives."""

    def __init__(self, job: dict) -> None:
        self.params = Params(job.get("params") or {})
        self.body = job.get("body") or ""
        self.header = Header(job.get("headers") or {})
        self.log = Log()
        self.result = Result()
        self.secrets = Secrets(job.get("secrets"))
        self.request = Request(self.params, self.body, self.header, self.log)


def run_action(job: dict) -> dict:
    """Run one job in this process; the outcome document."""
    engine = Engine(job)
    source = job.get("source") or ""
    outcome = {
        "ok": False,
        "has_run": False,
        "result": None,
        "status_code": None,
        "content_type": None,
        "logs": engine.log.lines,
        "logs_dropped": 0,
        "error": None,
    }
    module = types.ModuleType("action")
    module.__file__ = ACTION_FILE
    sys.modules["action"] = module
    linecache.cache[ACTION_FILE] = (len(source), None, source.splitlines(True), ACTION_FILE)
    try:
        exec(compile(source, ACTION_FILE, "exec"), module.__dict__)  # noqa: S102  (the user's code)
        entry = module.__dict__.get("Run")
        if callable(entry):
            outcome["has_run"] = True
            entry(engine)
        outcome["ok"] = True
    except BaseException as exc:  # noqa: BLE001  (SystemExit, KeyboardInterrupt: failed too)
        if isinstance(exc, SystemExit) and exc.code in (None, 0):
            outcome["ok"] = True  # sys.exit() / sys.exit(0) ends the run normally, as it did
        else:
            text = user_traceback(exc)
            engine.log.error(text)
            outcome["error"] = text
    if outcome["ok"] and outcome["has_run"]:  # the result set so far
        outcome.update(
            result=engine.result.value if engine.result.value is not None else "",
            status_code=engine.result.status_code,
            content_type=engine.result.content_type,
        )
        if engine.result.headers:
            outcome["headers"] = engine.result.headers
        if engine.result.encoding:
            outcome["result_encoding"] = engine.result.encoding
    outcome["logs_dropped"] = engine.log.dropped
    return outcome


INSTALL_HINT = (
    "; the library is not installed on this server: install it with "
    "`codeactions libs install {name}` (or `codeactions libs sync` for every code's imports)"
)


def user_traceback(exc: BaseException) -> str:
    """The traceback of the user's code only (``action.py``, line N): no frame of the
    harness, the standard library or an installed library, so no path of the server's."""
    frames = traceback.extract_tb(exc.__traceback__)
    user_frames = [frame for frame in frames if frame.filename == ACTION_FILE]
    lines = (
        ["Traceback (most recent call last):\n", *traceback.format_list(user_frames)]
        if user_frames
        else []
    )
    lines += traceback.format_exception_only(type(exc), exc)
    if isinstance(exc, ModuleNotFoundError) and exc.name and missing_library(exc.name):
        lines[-1] = lines[-1].rstrip("\n") + INSTALL_HINT.format(name=exc.name.partition(".")[0])
    return "".join(lines).rstrip()


def missing_library(name: str) -> bool:
    """Whether a module that could not be found would be a library (not the standard library's)."""
    top = name.partition(".")[0]
    return top not in sys.stdlib_module_names and top != "action"


def read_job(fd: int) -> dict:
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return json.loads(b"".join(chunks))


def write_outcome(fd: int, outcome: dict) -> None:
    data = json.dumps(outcome, default=str).encode()
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


WARM_UP_JOB = {
    "source": "def Run(engine):\n    engine.result.set('')\n",
    "params": {},
    "headers": {},
}


def warm_up() -> None:
    """One minimal run while idle: this fresh fork copies, ahead of the job, the
    memory pages every run writes to (reference counts), which would otherwise
    cost the real run about a millisecond of copy-on-write faults. Only what
    every run touches: pages a run may not need would be copied for nothing."""
    write_outcome(os.open(os.devnull, os.O_WRONLY), run_action(json.loads(json.dumps(WARM_UP_JOB))))


def serve(job_fd: int, outcome_fd: int) -> None:
    """Entry point in the sandboxed child: one job in, one outcome out."""
    if not select.select([job_fd], [], [], 0)[0]:  # a warm sandbox, waiting for its job
        warm_up()
    job = read_job(job_fd)
    os.close(job_fd)
    os.set_inheritable(outcome_fd, False)  # programs the code starts never hold the outcome
    # After the standard library: an installed library can never shadow one of its modules.
    sys.path[:] = [*sys.path, *job.get("python_path", [])]
    sys.argv = [ACTION_FILE]
    # The run's standard streams: they stay open for the rest of the process (no `with`).
    sys.stdin = open(os.devnull)  # noqa: SIM115
    sys.stdout = open(1, "w", encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
    outcome = run_action(job)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    write_outcome(outcome_fd, outcome)
    os.close(outcome_fd)  # the supervisor reports now, not after this process exits
