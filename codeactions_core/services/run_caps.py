"""What the server stores of a run, whatever a sandbox or a runtime plugin reports: bounded
log lines, result and extra; an HTTP status a code may set; text every store can hold."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from codeactions_core.execution.runtime import LogLine, Outcome
from codeactions_core.model import MAX_LOG_CONTENT, LogType, RunStatus

MIN_STATUS, MAX_STATUS = 200, 599
"""HTTP statuses a code may answer with: no 1xx (a final 101 or 100 is a smuggling primitive
behind a proxy), nothing beyond 599."""
MAX_CONTENT_TYPE = 100
OUTPUT_KEYS = ("stdout", "stderr")
RESPONSE_KEYS = ("status_code", "content_type")
"""The outcome's typed fields, first in a stored run's ``extra`` (a runtime written before
they were typed may still report them in ``extra``)."""
REPLACEMENT = "\ufffd"


@dataclass(frozen=True)
class RunLimits:
    """The server's own caps on a stored run (RUN_MAX_* settings, SANDBOX_OUTPUT_KB)."""

    log_lines: int = 1000
    log_bytes: int = 1024 * 1024
    result_bytes: int = 4 * 1024 * 1024
    extra_bytes: int = 64 * 1024
    output_bytes: int = 1024 * 1024


def storable(text: Any) -> str:
    """``text`` as every store can hold it: NUL and lone surrogates replaced by U+FFFD."""
    if not isinstance(text, str):
        text = str(text)
    if "\x00" in text:
        text = text.replace("\x00", REPLACEMENT)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = "".join(REPLACEMENT if 0xD800 <= ord(char) <= 0xDFFF else char for char in text)
    return text


def storable_value(value: Any) -> Any:
    """A JSON-like value with every string (keys too) storable; anything else becomes text."""
    if isinstance(value, Mapping):
        return {storable(key): storable_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [storable_value(item) for item in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return storable(value)


def cut(text: str, limit: int) -> tuple[str, bool]:
    """``text`` cut to at most ``limit`` UTF-8 bytes (never inside a character); whether it was."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text, False
    return data[:limit].decode("utf-8", errors="ignore"), True


def failed(reason: str, outcome: Outcome) -> Outcome:
    """A failed outcome keeping the logs and output of ``outcome``."""
    return Outcome(
        status=RunStatus.FAILED,
        result=reason,
        logs=outcome.logs,
        stdout=outcome.stdout,
        stderr=outcome.stderr,
        timed_out=outcome.timed_out,
    )


def bounded(outcome: Outcome, limits: RunLimits) -> Outcome:
    """The outcome as the run is stored: terminal, within every cap, storable."""
    extra = dict(outcome.extra) if isinstance(outcome.extra, Mapping) else {}
    response = {key: extra.pop(key) for key in RESPONSE_KEYS if key in extra}
    for key in RESPONSE_KEYS:
        if getattr(outcome, key, None) is not None:
            response[key] = getattr(outcome, key)
    outcome = Outcome(
        status=outcome.status if isinstance(outcome.status, RunStatus) else RunStatus.FAILED,
        result=storable("" if outcome.result is None else outcome.result),
        extra={**response, **extra},
        logs=bounded_logs(outcome.logs, limits),
        stdout=cut(storable(outcome.stdout or ""), limits.output_bytes)[0],
        stderr=cut(storable(outcome.stderr or ""), limits.output_bytes)[0],
        timed_out=bool(outcome.timed_out),
    )
    if not outcome.status.terminal:
        return failed(f"the runtime reported the run {outcome.status}, not finished", outcome)
    size = len(outcome.result.encode("utf-8"))
    if size > limits.result_bytes:
        return failed(
            f"the result is {size} bytes, larger than the {limits.result_bytes} bytes allowed",
            outcome,
        )
    if outcome.status is RunStatus.COMPLETED:
        problem = status_problem(
            outcome.extra.get("invalid_status_code", outcome.extra.get("status_code", 200))
        )
        if problem:
            return failed(problem, outcome)
    kept = bounded_extra(outcome.extra, limits)
    outcome.status_code, outcome.content_type = (
        kept.pop("status_code", None),
        kept.pop("content_type", None),
    )
    outcome.extra = kept
    return outcome


def status_problem(value: Any) -> str:
    """Why a status code the code set cannot be answered with ("" when it can)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return (
            f"the code set the HTTP status {value!r}; a code may set {MIN_STATUS} to {MAX_STATUS}"
        )
    try:
        status = int(value)
    except ValueError:
        return (
            f"the code set the HTTP status {value!r}; a code may set {MIN_STATUS} to {MAX_STATUS}"
        )
    if not MIN_STATUS <= status <= MAX_STATUS:
        return f"the code set the HTTP status {status}; a code may set {MIN_STATUS} to {MAX_STATUS}"
    return ""


def bounded_extra(extra: Mapping[str, Any], limits: RunLimits) -> dict[str, Any]:
    """``extra`` storable and within EXTRA bytes (stdout and stderr aside): too large, only the
    status code and content type stay and ``extra_dropped`` says why."""
    kept = storable_value(
        {
            key: value
            for key, value in extra.items()
            if key not in (*OUTPUT_KEYS, "invalid_status_code")
        }
    )
    if "status_code" in kept:
        kept["status_code"] = (
            int(kept["status_code"]) if not status_problem(kept["status_code"]) else 200
        )
    if "content_type" in kept:
        kept["content_type"] = cut(storable(kept["content_type"]), MAX_CONTENT_TYPE)[0]
    size = len(json.dumps(kept, ensure_ascii=False).encode("utf-8"))
    if size > limits.extra_bytes:
        kept = {key: kept[key] for key in ("status_code", "content_type") if key in kept}
        kept["extra_dropped"] = (
            f"the run reported {size} bytes of extra, more than the {limits.extra_bytes} allowed"
        )
    for key in OUTPUT_KEYS:
        if extra.get(key):
            kept[key] = cut(storable(extra[key]), limits.output_bytes)[0]
    return kept


def bounded_logs(logs: Any, limits: RunLimits) -> list[LogLine]:
    """At most LOG_LINES lines of at most LOG_BYTES together; a last line counts the dropped."""
    lines = logs if isinstance(logs, list) else []
    room = limits.log_lines if len(lines) <= limits.log_lines else limits.log_lines - 1
    kept: list[LogLine] = []
    total = dropped = 0
    for line in lines:
        if len(kept) >= room or total >= limits.log_bytes:
            dropped += 1
            continue
        kind = getattr(line, "type", LogType.INFO)
        content = cut(
            storable(getattr(line, "content", line))[:MAX_LOG_CONTENT], limits.log_bytes - total
        )[0]
        total += len(content.encode("utf-8"))
        kept.append(LogLine(kind if isinstance(kind, LogType) else LogType.INFO, content))
    if dropped:
        kept.append(
            LogLine(
                LogType.ERROR,
                f"{dropped} more log lines were dropped (the server keeps "
                f"{limits.log_lines} lines and {limits.log_bytes} bytes of a run)",
            )
        )
    return kept
