"""The contract between the core and a language runtime plugin."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from codeactions_core.model import Code, LogType, RunStatus


@dataclass(kw_only=True)
class RunRequest:
    """What a caller hands to a run: query parameters, body text, headers."""

    params: dict[str, Any] = field(default_factory=dict)
    body: str = ""
    headers: dict[str, list[str]] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict, repr=False)
    """The secrets of the code's project (the server fills them in; never stored): only ever
    sent into the sandbox in the job."""


@dataclass
class Job(RunRequest):
    """One run of one code, as handed to a runtime: the request, for run ``run_id`` of
    ``code`` (``Job(run_id, code, params=..., body=..., headers=...)``)."""

    run_id: str
    code: Code

    @classmethod
    def of(cls, run_id: str, code: Code, request: RunRequest) -> Job:
        """The job that runs ``request`` as run ``run_id`` of ``code``."""
        return cls(
            run_id,
            code,
            params=request.params,
            body=request.body,
            headers=request.headers,
            secrets=request.secrets,
        )


@dataclass
class LogLine:
    type: LogType
    content: str


@dataclass
class Outcome:
    """What a run produced. ``status`` is terminal: completed or failed. ``extra`` holds the
    rest of the response the code shaped (``headers``, ``result_encoding``,
    ``response_errors``), kept on the run as it is."""

    status: RunStatus
    result: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    logs: list[LogLine] = field(default_factory=list)
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False
    status_code: int | None = None
    """The HTTP status the code answered with (None: unset, 200)."""
    content_type: str | None = None
    """The content type the code answered with: ``json``, ``html``, another short word (plain
    text) or a full media type (None: unset, plain text)."""


@dataclass(frozen=True)
class RuntimeHealth:
    ready: bool
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    """E.g. the sandbox protections in force."""


@runtime_checkable
class Runtime(Protocol):
    """Runs codes of one language in the sandbox."""

    language: str
    """The value of a code's ``language`` this runtime serves, e.g. ``python``."""

    def start(self) -> None:
        """Start warm resources (zygotes, process pools); called once per server process."""

    def stop(self) -> None:
        """Release everything ``start`` acquired."""

    def health(self) -> RuntimeHealth:
        """Whether runs can execute now, and why not (e.g. the toolchain is missing)."""

    def prepare(self, code: Code) -> None:
        """A code was saved: get ready to run it (e.g. start compiling it in the background).

        Must return quickly and never fail because of the user's code.
        """

    def execute(self, job: Job) -> Outcome:
        """Run the job in the sandbox and report what happened; never raise for user errors."""
