"""The final write of a run: its outcome bounded and masked, its log lines, its record,
committed, or kept in the local outbox while the database is unreachable (issue 13), and
the outbox replayed once it is back. Whatever fails on the way, the run ends failed."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime

from codeactions_core.errors import StoreError
from codeactions_core.execution.runtime import Outcome
from codeactions_core.model import Code, CodeLog, CodeRun, LogType, RunStatus, utcnow
from codeactions_core.services.outbox import Outbox, OutboxFull, PendingWrite
from codeactions_core.services.run_caps import RunLimits, bounded, storable
from codeactions_core.services.secret_masking import mask_outcome
from codeactions_core.store import LogStore, RunRepository

log = logging.getLogger(__name__)


class RunRecords:
    """Ends runs in the store: ``finish`` after the code ran, ``replay_outbox`` later."""

    def __init__(
        self,
        runs: RunRepository,
        logs: LogStore,
        limits: RunLimits,
        release: Callable[[], None],
        outbox: Outbox | None = None,
    ) -> None:
        self._runs = runs
        self._logs = logs
        self._limits = limits
        self._release = release
        self.outbox = outbox
        """Where final writes wait while the database is unreachable (None: nowhere)."""

    def finish(
        self, code: Code, run: CodeRun, outcome: Outcome, secrets: Iterable[str]
    ) -> tuple[CodeRun, Outcome]:
        """Store how ``run`` ended (``secrets``' values masked); the run and the outcome as
        stored (a failure to store turns them failed, never lost)."""
        logs_failed: Exception | None = None
        try:
            outcome = bounded(mask_outcome(outcome, secrets), self._limits)
            extra = run_extra(outcome)
            if outcome.logs:  # first, so that the run can tell where its logs live
                logs_failed = self._store_logs(code, run, outcome, extra)
            finished = self._runs.update(
                run.id, status=outcome.status, result=outcome.result, extra=extra
            )
            return finished or run, outcome
        except StoreError as exc:  # the database is unreachable: the answer must not be lost
            kept = self._keep_in_outbox(code, run, outcome, extra, logs_failed, exc)
            if kept is not None:
                return kept, outcome
            return self._fail_after_error(code, run, outcome, exc), outcome
        except Exception as exc:  # noqa: BLE001 - whatever failed, the run must still end failed
            return self._fail_after_error(code, run, outcome, exc), outcome

    def _keep_in_outbox(
        self,
        code: Code,
        run: CodeRun,
        outcome: Outcome,
        extra: dict,
        logs_failed: Exception | None,
        exc: StoreError,
    ) -> CodeRun | None:
        """Keep the final write in the local outbox; the run as the caller sees it, or None
        when the outbox cannot take it."""
        if self.outbox is None:
            return None
        logs = []
        if outcome.logs and isinstance(logs_failed, StoreError):
            logs = [(str(line.type), line.content) for line in outcome.logs]
            extra.pop("logs_error", None)  # they are not lost: they wait with the run
        try:
            self.outbox.add(
                PendingWrite(
                    run_id=run.id,
                    code_id=code.id,
                    status=str(outcome.status),
                    result=outcome.result,
                    extra=extra,
                    logs=logs,
                    run={
                        "params": run.params,
                        "body": run.body,
                        "headers": run.headers,
                        "created_at": run.created_at.isoformat(),
                        "code_mongo_id": run.code_mongo_id,
                    },
                )
            )
        except (OutboxFull, OSError, ValueError) as full:
            reason = getattr(full, "message", None) or str(full)
            log.error(
                "run %s: the database is unreachable and the outbox cannot keep its record: %s",
                run.id,
                reason,
            )
            return None
        log.warning(
            "run %s: its record waits in the local outbox until the database is back (%s)",
            run.id,
            exc.message,
        )
        run.status, run.result, run.extra = outcome.status, outcome.result, extra
        run.updated_at = utcnow()
        return run

    def replay_outbox(self) -> int:
        """Write the records waiting in the outbox (this process's, then dead processes'),
        in order, while the database answers; how many were written."""
        if self.outbox is None:
            return 0
        try:
            return self.outbox.replay(self._replay_one)
        finally:
            self._release()

    def _replay_one(self, pending: PendingWrite, logs_stored: Callable[[dict], None]) -> None:
        extra = dict(pending.extra)
        if pending.logs:
            location = self._logs.add_many(
                [
                    CodeLog(
                        id="",
                        run_id=pending.run_id,
                        code_id=pending.code_id,
                        type=LogType(kind),
                        content=content,
                    )
                    for kind, content in pending.logs
                ]
            )
            if location:
                extra["logs_location"] = location
            logs_stored(extra)
        status = RunStatus(pending.status)
        if self._runs.update(pending.run_id, status=status, result=pending.result, extra=extra):
            return
        created = pending.run.get("created_at")
        restored = self._runs.restore(
            CodeRun(
                id=pending.run_id,
                code_id=pending.code_id,
                status=status,
                result=pending.result,
                extra=extra,
                params=pending.run.get("params") or {},
                body=pending.run.get("body", ""),
                headers=pending.run.get("headers") or {},
                created_at=datetime.fromisoformat(created) if created else utcnow(),
                code_mongo_id=pending.run.get("code_mongo_id"),
            )
        )
        if restored:
            log.warning(
                "run %s: the database had lost it; recorded again from the outbox", pending.run_id
            )

    def _fail_after_error(
        self, code: Code, run: CodeRun, outcome: Outcome, exc: Exception
    ) -> CodeRun:
        """The run could not be stored as it ended: store it failed with the reason instead."""
        reason = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        log.error("run %s of code %s could not be stored as it ended: %s", run.id, code.id, reason)
        outcome.status, outcome.extra = RunStatus.FAILED, {}
        outcome.status_code = outcome.content_type = None
        outcome.result = storable(f"internal error while storing the run's outcome: {reason}")
        try:
            finished = self._runs.update(
                run.id, status=RunStatus.FAILED, result=outcome.result, extra={}
            )
        except Exception:
            log.exception("run %s could not be marked failed; the abandoned-run sweep will", run.id)
            finished = None
        if finished is None:  # this request's own copy of the run, as it should have been stored
            run.status, run.result, run.extra = RunStatus.FAILED, outcome.result, {}
        return finished or run

    def _store_logs(
        self, code: Code, run: CodeRun, outcome: Outcome, extra: dict
    ) -> Exception | None:
        """Write the run's log lines; a log store failure is noted on the run, never loses it
        (and returned)."""
        try:
            location = self._logs.add_many(
                [
                    CodeLog(
                        id="", run_id=run.id, code_id=code.id, type=line.type, content=line.content
                    )
                    for line in outcome.logs
                ]
            )
        except Exception as exc:  # noqa: BLE001 - whatever the log store raised: noted on the run
            reason = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            log.error(
                "run %s: its %d log lines could not be stored: %s",
                run.id,
                len(outcome.logs),
                reason,
            )
            extra["logs_error"] = f"{len(outcome.logs)} log lines could not be stored: {reason}"
            return exc
        if location:
            extra["logs_location"] = location
        return None


def run_extra(outcome: Outcome) -> dict:
    """``extra`` of the stored run: status code and content type, the rest of the response
    the code shaped, then captured output."""
    extra: dict = {}
    if outcome.status_code is not None:
        extra["status_code"] = outcome.status_code
    if outcome.content_type is not None:
        extra["content_type"] = outcome.content_type
    extra.update(outcome.extra)
    if outcome.stdout:
        extra["stdout"] = outcome.stdout
    if outcome.stderr:
        extra["stderr"] = outcome.stderr
    if outcome.timed_out:
        extra["timed_out"] = True
    return extra
