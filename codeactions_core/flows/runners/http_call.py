"""``http_call``: one HTTP request to an external API, with a timeout and optional retries.

Config::

    {"method": "GET|POST|PUT|PATCH|DELETE" (default GET), "url": "https://...",
     "headers": {"name": "value" (numbers and booleans are sent as text)},
     "body": "text" | {...} | [...],
     "timeout": seconds (default 30, at most 300),
     "retry": {"max_attempts": 1-10 (default 1), "delay": seconds 0-60 (default 0)}}

A dict or list body is sent as JSON (``Content-Type: application/json`` unless
the headers say otherwise), a string body as is (``text/plain; charset=utf-8``
unless the headers say otherwise).

Retries: up to ``max_attempts`` attempts in all. A connection error, a timeout
or a 5xx status is tried again after ``delay`` seconds; a 4xx status never is.
The delay is a real sleep inside the step (at most 60 s between attempts), so a
step may take up to ``max_attempts × (timeout + delay)``; use a ``wait`` step
for longer pauses. A final status of 400 or more fails the step with the status
and the start of the body.

Result: ``{"status": int, "headers": {lower-case name: value}, "body": ...}``,
the body parsed when the response is JSON, else text; bodies over 1 MiB fail
the step. Log lines show the URL without its query string or credentials.

Connections obey the flow egress policy (``runners/common.py``): an address it denies
fails the step at once, without retries.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from codeactions_core.flows.placeholders import or_placeholder, to_text
from codeactions_core.flows.runners.common import (
    MAX_RESPONSE_BYTES,
    Egress,
    Response,
    TransportError,
    as_number,
    number_problems,
    opener,
    send,
    shown_url,
    url_problems,
)
from codeactions_core.flows.steps import LogFunction, StepContext, StepFailed, StepResult

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
DEFAULT_TIMEOUT = 30
MAX_TIMEOUT = 300
MAX_ATTEMPTS = 10
MAX_DELAY = 60

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "method": {"enum": list(METHODS)},
        "url": {"type": "string", "minLength": 1},
        "headers": {
            "type": "object",
            "additionalProperties": {"type": ["string", "number", "boolean"]},
        },
        "body": {"type": ["string", "object", "array"]},
        "timeout": or_placeholder(
            {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_TIMEOUT}, "a number of seconds"
        ),
        "retry": {
            "type": "object",
            "properties": {
                "max_attempts": {"type": "integer", "minimum": 1, "maximum": MAX_ATTEMPTS},
                "delay": {"type": "number", "minimum": 0, "maximum": MAX_DELAY},
            },
            "additionalProperties": False,
        },
    },
    "required": ["url"],
    "additionalProperties": False,
}


class HttpCallRunner:
    """Runs ``http_call`` steps with ``urllib`` (no extra dependency)."""

    step_type = "http_call"
    config_schema = SCHEMA

    def __init__(
        self,
        *,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        sleep: Callable[[float], None] = time.sleep,
        egress: Egress | None = None,
    ) -> None:
        self.max_response_bytes = max_response_bytes
        self.sleep = sleep
        self._opener = opener(egress or Egress())

    def validate_config(self, config: dict[str, Any]) -> list[str]:
        """The URL is http(s); a timeout given as text is in range."""
        return url_problems(config.get("url"), "url") + number_problems(
            config, "timeout", minimum=0, maximum=MAX_TIMEOUT, exclusive_minimum=True
        )

    def execute(
        self, config: dict[str, Any], context: StepContext, on_log: LogFunction
    ) -> StepResult:
        """Send the request, retrying as configured; the response is the result."""
        method = config.get("method", "GET")
        url = config["url"]
        timeout = float(as_number(config.get("timeout", DEFAULT_TIMEOUT), "timeout"))
        retry = config.get("retry") or {}
        attempts = int(retry.get("max_attempts", 1))
        delay = float(retry.get("delay", 0))
        headers = {
            str(name): to_text(value) for name, value in (config.get("headers") or {}).items()
        }
        headers, data = request_body(headers, config.get("body"))
        target = f"{method} {shown_url(url)}"
        for attempt in range(1, attempts + 1):
            on_log(f"attempt {attempt}/{attempts}: {target}")
            started = time.perf_counter()
            try:
                response = send(
                    method,
                    url,
                    headers=headers,
                    data=data,
                    timeout=timeout,
                    max_bytes=self.max_response_bytes,
                    through=self._opener,
                )
            except TransportError as error:
                problem, response = str(error), None
                on_log(f"{target}: {problem}", "error")
            else:
                elapsed = (time.perf_counter() - started) * 1000
                on_log(f"HTTP {response.status} in {elapsed:.0f} ms")
                if response.status < 500:
                    break
                problem = f"HTTP {response.status}"
            if attempt < attempts:
                on_log(f"retrying in {delay:g} s")
                self.sleep(delay)
        else:
            tries = f" (after {attempts} attempts)" if attempts > 1 else ""
            if response is None:
                raise StepFailed(f"{target}: {problem}{tries}")
            raise StepFailed(failure(target, response) + tries)
        if response.status >= 400:
            raise StepFailed(failure(target, response))
        return StepResult(
            result={
                "status": response.status,
                "headers": response.headers,
                "body": response.json_or_text(),
            }
        )


def request_body(headers: dict[str, str], body: Any) -> tuple[dict[str, str], bytes | None]:
    """The headers and bytes to send: JSON for a dict or list body, text for a string."""
    if body is None:
        return dict(headers), None
    has_type = any(name.lower() == "content-type" for name in headers)
    if isinstance(body, str):
        default_type, data = "text/plain; charset=utf-8", body.encode("utf-8")
    else:
        default_type = "application/json"
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return (dict(headers) if has_type else {**headers, "Content-Type": default_type}), data


def failure(target: str, response: Response) -> str:
    """The message of a step failed by its final status."""
    excerpt = response.excerpt()
    return f"{target} answered HTTP {response.status}" + (f": {excerpt}" if excerpt else "")
