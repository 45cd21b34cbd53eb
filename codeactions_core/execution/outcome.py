"""Turning a sandbox report into the run's outcome: one reading for every runtime.

Every engine harness writes the same outcome document on its outcome pipe::

    {"ok": bool, "has_run": bool, "result": str | null, "status_code": int | null,
     "content_type": str | null, "logs": [[type, content], ...], "logs_dropped": int,
     "error": str | null, "headers": {name: [value, ...]} | absent,
     "result_encoding": "base64" | absent}

``has_run`` false means the code was a plain script: its stdout is the result.
``result_encoding`` "base64": the code set bytes (a file to serve), sent as base64;
``headers``: the response headers it set (checked here, see ``response.py``).
"""

from __future__ import annotations

import base64
import binascii
import signal
from typing import Any

from codeactions_core.execution.response import content_type_problem, response_headers
from codeactions_core.execution.runtime import LogLine, Outcome
from codeactions_core.execution.sandbox import Report
from codeactions_core.model import LogType, RunStatus

KILLED_BY = {
    signal.SIGKILL: "it was killed: it exceeded its memory or process limit",
    signal.SIGXCPU: "it used up its CPU time",
    signal.SIGXFSZ: "it wrote a file larger than allowed",
    signal.SIGSEGV: "it crashed (segmentation fault)",
    signal.SIGABRT: "it aborted",
}


def outcome_from_report(report: Report, *, timeout: float, result_limit: int) -> Outcome:
    document = report.outcome or {}
    logs = [to_log_line(entry) for entry in document.get("logs") or [] if isinstance(entry, list)]
    if document.get("logs_dropped"):
        logs.append(
            LogLine(LogType.ERROR, f"{document['logs_dropped']} more log lines were dropped")
        )
    outcome = Outcome(
        status=RunStatus.FAILED, logs=logs, stdout=report.stdout, stderr=report.stderr
    )

    if report.timed_out:
        outcome.timed_out = True
        outcome.result = (
            f"timeout: the code ran longer than its {timeout:g} s limit and was stopped"
        )
    elif report.error:
        outcome.result = report.error
    elif "setup_error" in document:
        outcome.result = f"the sandbox could not start the code: {document['setup_error']}"
    elif not report.outcome:
        outcome.result = describe_death(report)
    elif not document.get("ok"):
        outcome.result = str(document.get("error") or "the code failed")
    else:
        result = document.get("result") if document.get("has_run") else report.stdout
        outcome.result = "" if result is None else str(result)
        outcome.status = RunStatus.COMPLETED
        outcome.status_code = http_status(document.get("status_code"))
        outcome.content_type = str(document.get("content_type") or "text")
        if not status_as_set(document.get("status_code"), outcome.status_code):
            outcome.extra["invalid_status_code"] = str(document.get("status_code"))[:50]
        if document.get("has_run"):
            shape_response(outcome, document)
        if not document.get("has_run"):
            outcome.stdout = ""  # it is the result
    if len(outcome.result.encode("utf-8", errors="replace")) > result_limit:
        outcome.status = RunStatus.FAILED
        outcome.extra, outcome.status_code, outcome.content_type = {}, None, None
        outcome.result = f"the result is larger than the {result_limit} bytes allowed"
    if report.stdout_truncated or report.stderr_truncated:
        outcome.logs.append(LogLine(LogType.ERROR, "output beyond the limit was cut"))
    return outcome


def shape_response(outcome: Outcome, document: dict[str, Any]) -> None:
    """Response headers, a full content type and a binary result, as the code set them;
    what is refused is recorded on the run (``extra.response_errors`` and error log lines)."""
    headers, problems = response_headers(document.get("headers"))
    for name in [name for name in headers if name.lower() == "content-type"]:
        outcome.content_type = headers.pop(name)[-1]
    problem = content_type_problem(outcome.content_type or "text")
    if problem:
        problems.append(problem)
    if document.get("result_encoding") == "base64":
        try:
            data = base64.b64decode(outcome.result, validate=True)
        except (binascii.Error, ValueError):
            problems.append("the binary result was not valid base64; it was kept as text")
        else:
            try:
                outcome.result = data.decode("utf-8")  # text after all: stored as text
            except UnicodeDecodeError:
                outcome.extra["result_encoding"] = "base64"
    if headers:
        outcome.extra["headers"] = headers
    if problems:
        outcome.extra["response_errors"] = problems
        outcome.logs.extend(LogLine(LogType.ERROR, problem) for problem in problems)


def describe_death(report: Report) -> str:
    if report.signal:
        reason = KILLED_BY.get(report.signal, f"it was killed by signal {report.signal}")
        return f"the code stopped without a result: {reason}"
    tail = report.stderr.strip()[-2000:]
    return f"the code exited with status {report.exit_code} without a result" + (
        f":\n{tail}" if tail else ""
    )


def http_status(value: Any) -> int:
    try:
        status = int(value)
    except (TypeError, ValueError):
        return 200
    return status if 100 <= status <= 599 else 200


def status_as_set(value: Any, used: int) -> bool:
    """Whether ``used`` is the status the code set (unset counts as set: the default)."""
    if value is None:
        return True
    try:
        return int(value) == used
    except (TypeError, ValueError):
        return False


def to_log_line(entry: list[Any]) -> LogLine:
    kind, content = (entry + ["", ""])[:2]
    try:
        log_type = LogType(kind)
    except ValueError:
        log_type = LogType.INFO
    return LogLine(log_type, str(content))
