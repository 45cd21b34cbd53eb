"""The S3 key layout: log lines as the old service wrote them, plus a per-code index.

Log line (COMPAT.md)::

    {prefix}/logs/{YYYY}/{MM}/{DD}/{run_id}/{code_id}/{log_id}.json

One ``add_many`` call for one run is a *batch*. The day is the UTC day of the
batch's first line. The log ids this store issues describe their batch::

    {run_id}_{micros:16}-{token:6}-{count:6}-{seq:6}

``micros`` is the first line's creation time (µs since the epoch), ``token``
six random hex digits (two batches of one run in the same µs stay apart),
``count`` the batch's number of lines, ``seq`` the line's place in it. All
widths are fixed, so within a run the lexical order of ids is the write order.
From an id alone we know the run and the day, hence the run's key prefix.

Per-code index, one empty object per batch, newest first in lexical order::

    {prefix}/index/code/{code_id}/{inverted micros:16}_{run_id}_{micros}-{token}-{count}

From an index key we know every log key of its batch without listing them, and
from a log key we know its batch's index key (so deleting logs drops the index).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_MICROS = 10**16 - 1
MAX_BATCH_LINES = 999_999
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
TAG = r"(?P<micros>\d{16})-(?P<token>[0-9a-f]{6})-(?P<count>\d{6})"
LOG_ID = re.compile(rf"(?P<run>{SAFE_ID.pattern})_{TAG}-(?P<seq>\d{{6}})")
INDEX_NAME = re.compile(rf"\d{{16}}_(?P<run>{SAFE_ID.pattern})_{TAG}")
DAY_PARTS = r"(?P<year>\d{4})/(?P<month>\d{2})/(?P<day>\d{2})"


def is_safe_id(value: object) -> bool:
    """True for ids that can be a key segment and metadata (UUIDs, ObjectIds)."""
    return isinstance(value, str) and SAFE_ID.fullmatch(value) is not None


def to_micros(moment: datetime) -> int:
    """Microseconds since the epoch (naive datetimes are UTC), clamped to 16 digits."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return min(max((moment - EPOCH) // timedelta(microseconds=1), 0), MAX_MICROS)


def utc_day(moment: datetime) -> date:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).date()


@dataclass(frozen=True)
class Batch:
    """The lines of one run written by one ``add_many`` call."""

    run_id: str
    code_id: str
    micros: int
    token: str
    count: int

    @property
    def day(self) -> date:
        return (EPOCH + timedelta(microseconds=self.micros)).date()

    @property
    def tag(self) -> str:
        return f"{self.micros:016d}-{self.token}-{self.count:06d}"

    def log_id(self, seq: int) -> str:
        return f"{self.run_id}_{self.tag}-{seq:06d}"


@dataclass(frozen=True)
class LogRef:
    """What a log id issued by this store says: its batch (minus the code) and place."""

    run_id: str
    micros: int
    token: str
    count: int
    seq: int

    @property
    def day(self) -> date:
        return self.batch("").day

    def batch(self, code_id: str) -> Batch:
        return Batch(self.run_id, code_id, self.micros, self.token, self.count)


def parse_log_id(log_id: str) -> LogRef | None:
    """The reference in a log id this store issued; None for any other string."""
    match = LOG_ID.fullmatch(log_id) if isinstance(log_id, str) else None
    if match is None:
        return None
    return LogRef(
        match["run"], int(match["micros"]), match["token"], int(match["count"]), int(match["seq"])
    )


class Layout:
    """Every key and prefix under one configured prefix (``FLOWS_CODE_ACTIONS_S3_PREFIX``)."""

    def __init__(self, prefix: str) -> None:
        prefix = prefix.strip("/")
        self.root = f"{prefix}/" if prefix else ""
        self.logs_root = f"{self.root}logs/"
        self.index_root = f"{self.root}index/code/"
        self._log_key = re.compile(
            rf"{re.escape(self.logs_root)}{DAY_PARTS}/(?P<run>[^/]+)/(?P<code>[^/]+)/(?P<name>[^/]+)\.json"
        )

    def day_prefix(self, day: date) -> str:
        return f"{self.logs_root}{day:%Y/%m/%d}/"

    def run_prefix(self, day: date, run_id: str) -> str:
        """Where a run's lines of one day live; what ``add_many`` returns as the location."""
        return f"{self.day_prefix(day)}{run_id}/"

    def log_key(self, batch: Batch, seq: int) -> str:
        return f"{self.run_prefix(batch.day, batch.run_id)}{batch.code_id}/{batch.log_id(seq)}.json"

    def code_index_prefix(self, code_id: str) -> str:
        return f"{self.index_root}{code_id}/"

    def index_key(self, batch: Batch) -> str:
        inverted = MAX_MICROS - batch.micros
        return f"{self.code_index_prefix(batch.code_id)}{inverted:016d}_{batch.run_id}_{batch.tag}"

    def parse_index_key(self, key: str, code_id: str) -> Batch | None:
        name = key.removeprefix(self.code_index_prefix(code_id))
        match = INDEX_NAME.fullmatch(name) if name != key else None
        if match is None:
            return None
        return Batch(
            match["run"], code_id, int(match["micros"]), match["token"], int(match["count"])
        )

    def parse_log_key(self, key: str) -> tuple[date, str, str, str] | None:
        """(day, run id, code id, log id) of a key in the log layout, ours or legacy."""
        match = self._log_key.fullmatch(key)
        if match is None:
            return None
        try:
            day = date(int(match["year"]), int(match["month"]), int(match["day"]))
        except ValueError:
            return None
        return day, match["run"], match["code"], match["name"]

    def batch_of_key(self, key: str) -> Batch | None:
        """The batch of a log key this store wrote (None for legacy keys)."""
        parsed = self.parse_log_key(key)
        ref = parse_log_id(parsed[3]) if parsed else None
        if parsed is None or ref is None or ref.run_id != parsed[1]:
            return None
        return ref.batch(parsed[2])


def is_location_of(location: object, run_id: str) -> bool:
    """Whether ``location`` is what ``add_many`` returns for ``run_id``'s lines.

    Any prefix is accepted (S3_PREFIX may have changed since), but the location
    must end with ``logs/YYYY/MM/DD/{run_id}/``: listing it can only find that run.
    """
    if not isinstance(location, str) or not is_safe_id(run_id):
        return False
    return re.fullmatch(rf"(?:.*/)?logs/{DAY_PARTS}/{re.escape(run_id)}/", location) is not None
