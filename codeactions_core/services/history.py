"""Reading what runs left behind: runs and their log lines."""

from __future__ import annotations

from datetime import UTC, datetime

from codeactions_core.errors import InvalidInput, NotFound
from codeactions_core.model import CodeLog, CodeRun, Page, canonical_id
from codeactions_core.services.codes import CodeService
from codeactions_core.store import LogStore, RunRepository

LOGS_PER_PAGE = 20
MAX_RUNS_LISTED = 1000


def parse_moment(raw: str, field: str) -> datetime:
    """An ISO 8601 / RFC 3339 date or date-time; naive values are taken as UTC."""
    try:
        moment = datetime.fromisoformat(raw.strip().replace(" ", "T", 1))
    except ValueError:
        raise InvalidInput(
            f"{field} {raw!r} is not a date; use RFC 3339, e.g. 2024-01-15T10:30:00Z"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_page(raw: str | None) -> int:
    if raw in (None, ""):
        return 1
    try:
        page = int(raw)
    except ValueError:
        raise InvalidInput(f"page must be a positive integer, got {raw!r}") from None
    if page < 1:
        raise InvalidInput(f"page must be a positive integer, got {raw!r}")
    return page


class HistoryService:
    """Runs and logs, always reached through their code (whose project decides access)."""

    def __init__(self, codes: CodeService, runs: RunRepository, logs: LogStore) -> None:
        self._codes = codes
        self._runs = runs
        self._logs = logs

    def project_of(self, code_id: str) -> str | None:
        """The project a code belongs to; None when the code is unknown (e.g. deleted)."""
        code = self._codes.find(code_id)
        return code.project_uuid if code else None

    def get_run(self, run_id: str) -> CodeRun:
        run = self._runs.get(canonical_id(run_id))
        if run is None:
            raise NotFound(f"run {run_id!r} not found")
        return run

    def list_runs(
        self, code_id: str | None, after: str | None = None, before: str | None = None
    ) -> list[CodeRun]:
        if not code_id:
            raise InvalidInput("code_id is required")
        after_moment = parse_moment(after, "after") if after else None
        before_moment = parse_moment(before, "before") if before else None
        code = self._codes.get(code_id)
        return self._runs.list_by_code(
            code.id, after=after_moment, before=before_moment, limit=MAX_RUNS_LISTED
        )

    def get_log(self, log_id: str) -> CodeLog:
        log = self._logs.get(canonical_id(log_id))
        if log is None:
            raise NotFound(f"log {log_id!r} not found")
        return log

    def list_logs(self, run_id: str | None, code_id: str | None, page: str | None) -> Page:
        number = parse_page(page)
        if run_id:
            return self._logs.list_by_run(self.get_run(run_id), page=number, per_page=LOGS_PER_PAGE)
        if code_id:
            code = self._codes.get(code_id)
            return self._logs.list_by_code(code.id, page=number, per_page=LOGS_PER_PAGE)
        raise InvalidInput("run_id or code_id is required")
