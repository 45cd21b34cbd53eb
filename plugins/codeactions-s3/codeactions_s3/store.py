"""S3LogStore: run logs as one JSON object per line (see ``keys`` for the layout).

Costs, in S3 requests:

- ``add_many``: one PutObject per line (concurrent) plus one per run for the
  per-code index entry.
- ``list_by_run`` with the run's location: one ListObjectsV2 per 1000 lines of
  the run, then one GetObject per line of the requested page (concurrent).
  Runs without a location (written by the old service): the same on each of at
  most ``legacy_days`` day prefixes, from the run's creation day on.
- ``list_by_code``: one ListObjectsV2 per 1000 runs of the code that have logs
  still retained (the per-code index), then one GetObject per line of the page.
  Logs written by the old service have no index entry and are not listed by code.
- ``get``: one ListObjectsV2 (one key, to learn the code id) and one GetObject.
- ``delete_older_than``: a few delimiter listings to find the days before the
  cutoff, one ListObjectsV2 per 1000 keys, one DeleteObjects per 500 lines
  (with their index entries). Whole UTC days are deleted: logs of the cutoff's
  own day stay until the next pass.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from codeactions_core.errors import StoreError
from codeactions_core.model import MAX_LOG_CONTENT, CodeLog, CodeRun, LogType, Page, rfc3339, utcnow
from codeactions_core.settings import Settings
from codeactions_s3.client import S3Target, make_client, s3_errors, target_of
from codeactions_s3.keys import (
    MAX_BATCH_LINES,
    Batch,
    Layout,
    is_location_of,
    is_safe_id,
    parse_log_id,
    to_micros,
    utc_day,
)
from codeactions_s3.settings import S3Settings

log = logging.getLogger(__name__)

T = TypeVar("T")
WORKERS = 16
LEGACY_DAYS = 2
DELETE_CHUNK = 500  # log keys per DeleteObjects; with their index keys at most 1000


class S3LogStore:
    """The log store of ``FLOWS_CODE_ACTIONS_S3_ENABLED``; thread-safe, fork-safe."""

    kind = "s3"

    def __init__(
        self,
        client_factory: Callable[[], Any],
        target: S3Target,
        prefix: str,
        *,
        workers: int = WORKERS,
        legacy_days: int = LEGACY_DAYS,
    ) -> None:
        self._client_factory = client_factory
        self.target = target
        self.layout = Layout(prefix)
        self._workers = workers
        self._legacy_days = legacy_days
        self._lock = threading.Lock()
        self._owner_pid = -1
        self._client: Any = None
        self._executor: ThreadPoolExecutor | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, attempts: int = 3) -> S3LogStore:
        return cls(
            lambda: make_client(settings, pool_size=WORKERS * 2, attempts=attempts),
            target_of(settings),
            settings.plugin(S3Settings).s3_prefix,
        )

    def __repr__(self) -> str:
        return f"S3LogStore({self.target.where}, prefix={self.layout.root!r})"

    # -- resources, made per process (a forked server worker gets its own) ---------------

    def _resources(self) -> tuple[Any, ThreadPoolExecutor]:
        pid = os.getpid()
        if self._owner_pid != pid:
            with self._lock:
                if self._owner_pid != pid:
                    self._client = self._client_factory()
                    self._executor = ThreadPoolExecutor(self._workers, thread_name_prefix="s3-logs")
                    self._owner_pid = pid
        assert self._executor is not None
        return self._client, self._executor

    @property
    def client(self) -> Any:
        """This process's boto3 S3 client."""
        return self._resources()[0]

    def close(self) -> None:
        with self._lock:
            if self._executor is not None and self._owner_pid == os.getpid():
                self._executor.shutdown(wait=True)
            self._executor, self._client, self._owner_pid = None, None, -1

    def _all(self, action: str, calls: Iterable[Callable[[], T]]) -> list[T]:
        """Run ``calls`` on the shared pool; their results in order, or the first failure."""
        _, executor = self._resources()
        futures: list[Future[T]] = [
            executor.submit(self._translated, action, call) for call in calls
        ]
        return [future.result() for future in futures]

    def _translated(self, action: str, call: Callable[[], T]) -> T:
        with s3_errors(self.target, action):
            return call()

    # -- the LogStore protocol -----------------------------------------------------------

    def ping(self) -> None:
        """Raise StoreError unless the bucket answers (HeadBucket)."""
        self._translated(
            "checking the bucket", lambda: self.client.head_bucket(Bucket=self.target.bucket)
        )

    def add_many(self, logs: Sequence[CodeLog]) -> str | None:
        """Write the lines concurrently, then their per-code index entries; the run's prefix."""
        batches = self._batches(logs)
        if not batches:
            return None
        self._all(
            "writing log lines",
            (
                lambda batch=batch, seq=seq, line=line: self._put_line(batch, seq, line)
                for batch, lines in batches
                for seq, line in enumerate(lines)
            ),
        )
        self._all(
            "writing the code's log index",
            (lambda batch=batch: self._put_index(batch) for batch, _ in batches),
        )
        locations = {self.layout.run_prefix(batch.day, batch.run_id) for batch, _ in batches}
        return locations.pop() if len(locations) == 1 else None

    def get(self, log_id: str) -> CodeLog | None:
        """A line this store wrote: its id names the run's prefix, whose first key names the code.

        None when there is no such line."""
        ref = parse_log_id(log_id)
        if ref is None:
            return None
        run_prefix = self.layout.run_prefix(ref.day, ref.run_id)
        with s3_errors(self.target, "finding a log line"):
            listing = self.client.list_objects_v2(
                Bucket=self.target.bucket, Prefix=run_prefix, MaxKeys=1
            )
        first = next(iter(listing.get("Contents") or ()), None)
        parsed = self.layout.parse_log_key(first["Key"]) if first else None
        if parsed is None:
            return None
        return self._fetch(self.layout.log_key(ref.batch(parsed[2]), ref.seq))

    def list_by_run(self, run: CodeRun, *, page: int, per_page: int) -> Page:
        """One prefix listing with the run's location; else its creation day and the next."""
        if not is_safe_id(run.id):
            return Page(items=[], total=0, page=page, per_page=per_page)
        location = run.extra.get("logs_location") if isinstance(run.extra, dict) else None
        if is_location_of(location, run.id):
            keys = [item["Key"] for item in self._list(location)]
        else:
            keys = self._legacy_keys(run)
        window = keys[(page - 1) * per_page : page * per_page]
        return Page(items=self._fetch_many(window), total=len(keys), page=page, per_page=per_page)

    def list_by_code(self, code_id: str, *, page: int, per_page: int) -> Page:
        """Newest first, through the per-code index (no log listing at all)."""
        if not is_safe_id(code_id):
            return Page(items=[], total=0, page=page, per_page=per_page)
        batches = [
            batch
            for item in self._list(self.layout.code_index_prefix(code_id))
            if (batch := self.layout.parse_index_key(item["Key"], code_id)) is not None
        ]
        total = sum(batch.count for batch in batches)
        newest_first = (
            self.layout.log_key(batch, seq)
            for batch in batches
            for seq in reversed(range(batch.count))
        )
        start = (page - 1) * per_page
        window = list(itertools.islice(newest_first, start, start + per_page))
        return Page(items=self._fetch_many(window), total=total, page=page, per_page=per_page)

    def delete_older_than(self, cutoff: datetime, limit: int) -> int:
        """Delete at most ``limit`` lines of the UTC days before ``cutoff``'s; how many."""
        if limit <= 0:
            return 0
        old_keys = itertools.islice(self._keys_of_days_before(utc_day(cutoff)), limit)
        deleted = 0
        while chunk := list(itertools.islice(old_keys, DELETE_CHUNK)):
            deleted += self._delete(chunk)
        return deleted

    # -- writing -------------------------------------------------------------------------

    def _batches(self, logs: Sequence[CodeLog]) -> list[tuple[Batch, list[CodeLog]]]:
        """The lines grouped by run (and code) in order of appearance, each group a batch."""
        groups: dict[tuple[str, str], list[CodeLog]] = {}
        for line in logs:
            groups.setdefault((line.run_id, line.code_id), []).append(line)
        batches = []
        for (run_id, code_id), lines in groups.items():
            for name, value in (("run", run_id), ("code", code_id)):
                if not is_safe_id(value):
                    raise StoreError(f"cannot store logs in S3: {value!r} is not a valid {name} id")
            if len(lines) > MAX_BATCH_LINES:
                raise StoreError(
                    f"cannot store more than {MAX_BATCH_LINES} log lines of one run at once"
                )
            micros = to_micros(lines[0].created_at)
            batches.append(
                (Batch(run_id, code_id, micros, secrets.token_hex(3), len(lines)), lines)
            )
        return batches

    def _put_line(self, batch: Batch, seq: int, line: CodeLog) -> None:
        stored = replace(line, id=batch.log_id(seq), content=line.content[:MAX_LOG_CONTENT])
        body = json.dumps(stored.to_json(), ensure_ascii=False).encode("utf-8")
        self.client.put_object(
            Bucket=self.target.bucket,
            Key=self.layout.log_key(batch, seq),
            Body=body,
            ContentType="application/json",
            Metadata={
                "run-id": stored.run_id,
                "code-id": stored.code_id,
                "log-type": str(stored.type),
                "created-at": rfc3339(stored.created_at),
            },
        )

    def _put_index(self, batch: Batch) -> None:
        self.client.put_object(
            Bucket=self.target.bucket,
            Key=self.layout.index_key(batch),
            Body=b"",
            Metadata={"run-id": batch.run_id, "code-id": batch.code_id},
        )

    # -- reading -------------------------------------------------------------------------

    def _list(self, prefix: str, delimiter: str = "") -> Iterator[dict[str, Any]]:
        """Every object (or, with a delimiter, common prefix) under ``prefix``, in key order."""
        paginator = self.client.get_paginator("list_objects_v2")
        arguments = {"Bucket": self.target.bucket, "Prefix": prefix}
        if delimiter:
            arguments["Delimiter"] = delimiter
        with s3_errors(self.target, "listing logs"):
            for response in paginator.paginate(**arguments):
                yield from response.get("CommonPrefixes" if delimiter else "Contents") or ()

    def _legacy_keys(self, run: CodeRun) -> list[str]:
        """A run without a location: its creation day and the next ``legacy_days - 1``.

        Our own ids sort in write order; the old service's are ordered by day,
        then upload time, then key (the best S3 can tell without reading them).
        """
        first = utc_day(run.created_at)
        found: list[tuple[date, datetime, str]] = []
        for offset in range(self._legacy_days):
            day = first + timedelta(days=offset)
            for item in self._list(self.layout.run_prefix(day, run.id)):
                found.append((day, item.get("LastModified") or utcnow(), item["Key"]))
        if all(self.layout.batch_of_key(key) for _, _, key in found):
            return sorted(key for _, _, key in found)
        return [key for _, _, key in sorted(found)]

    def _fetch_many(self, keys: Sequence[str]) -> list[CodeLog]:
        """The lines at ``keys`` (fetched concurrently), skipping any deleted meanwhile."""
        fetched = self._all("reading log lines", (lambda key=key: self._read(key) for key in keys))
        return [line for line in fetched if line is not None]

    def _fetch(self, key: str) -> CodeLog | None:
        return self._translated("reading a log line", lambda: self._read(key))

    def _read(self, key: str) -> CodeLog | None:
        client = self.client
        try:
            response = client.get_object(Bucket=self.target.bucket, Key=key)
        except client.exceptions.NoSuchKey:
            return None
        return self._to_log(key, response["Body"].read())

    def _to_log(self, key: str, body: bytes) -> CodeLog:
        """A stored line; the key fills what an old object's JSON lacks."""
        try:
            document = json.loads(body)
        except ValueError:
            document = {}
        if not isinstance(document, dict):
            document = {}
        parsed = self.layout.parse_log_key(key)
        run_id, code_id, name = parsed[1:] if parsed else ("", "", key.rsplit("/", 1)[-1])
        created = parse_time(document.get("created_at")) or utcnow()
        return CodeLog(
            id=str(document.get("id") or name),
            run_id=str(document.get("run_id") or run_id),
            code_id=str(document.get("code_id") or code_id),
            type=log_type(document.get("type")),
            content=str(document.get("content") or ""),
            created_at=created,
            updated_at=parse_time(document.get("updated_at")) or created,
        )

    # -- deleting ------------------------------------------------------------------------

    def _days_before(self, cutoff: date) -> Iterator[date]:
        """Days that have logs, before ``cutoff``, oldest first (three delimiter levels)."""
        for year_prefix in self._list(self.layout.logs_root, "/"):
            year = year_prefix["Prefix"].removeprefix(self.layout.logs_root).rstrip("/")
            if not (year.isdigit() and len(year) == 4) or int(year) > cutoff.year:
                continue
            for month_prefix in self._list(year_prefix["Prefix"], "/"):
                for day_prefix in self._list(month_prefix["Prefix"], "/"):
                    day = day_of_prefix(day_prefix["Prefix"], self.layout.logs_root)
                    if day is not None and day < cutoff:
                        yield day

    def _keys_of_days_before(self, cutoff: date) -> Iterator[str]:
        for day in self._days_before(cutoff):
            for item in self._list(self.layout.day_prefix(day)):
                yield item["Key"]

    def _delete(self, log_keys: list[str]) -> int:
        """Delete lines and their batches' index entries in one request; lines deleted."""
        index_keys = {
            self.layout.index_key(batch)
            for key in log_keys
            if (batch := self.layout.batch_of_key(key)) is not None
        }
        objects = [{"Key": key} for key in [*log_keys, *sorted(index_keys)]]
        with s3_errors(self.target, "deleting old logs"):
            response = self.client.delete_objects(
                Bucket=self.target.bucket, Delete={"Objects": objects, "Quiet": True}
            )
        failed = response.get("Errors") or []
        if failed:
            first = failed[0]
            log.error(
                "S3 refused to delete %d log objects, e.g. %s (%s)",
                len(failed),
                first.get("Key"),
                first.get("Code"),
            )
            raise StoreError(
                f"S3 refused to delete {len(failed)} old log objects in {self.target.where} "
                f"({first.get('Code', 'unknown error')})"
            )
        return len(log_keys)


def day_of_prefix(prefix: str, logs_root: str) -> date | None:
    """The day of ``{logs_root}YYYY/MM/DD/``; None for anything else."""
    parts = prefix.removeprefix(logs_root).rstrip("/").split("/")
    if len(parts) != 3 or not all(part.isdigit() for part in parts):
        return None
    try:
        return date(int(parts[0]), int(parts[1]), int(parts[2]))
    except ValueError:
        return None


def parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def log_type(value: object) -> LogType:
    try:
        return LogType(str(value).lower())
    except ValueError:
        return LogType.INFO
