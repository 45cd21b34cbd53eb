"""Cron expressions in a time zone, on croniter (APScheduler 3's CronTrigger reads crontab
weekday 0 as Monday, not Sunday, so it is not used for user expressions)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, CroniterBadDateError, CroniterError, croniter

from codeactions_core.errors import InvalidInput

MAX_EXPRESSION = 200


def parse_zone(name: object) -> ZoneInfo:
    """An IANA time zone (``Europe/Berlin``, ``UTC``); InvalidInput naming it otherwise."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("timezone must be an IANA time zone name such as UTC or Europe/Berlin")
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"timezone {name!r} is not a known IANA time zone") from None


@dataclass(frozen=True)
class Cron:
    """A parsed expression: 5 fields (minute hour day month weekday, 0 or 7 = Sunday),
    6 fields (seconds first), or an alias such as ``@hourly``."""

    expression: str
    zone: ZoneInfo

    @classmethod
    def parse(cls, expression: object, zone_name: object) -> Cron:
        if not isinstance(expression, str) or not expression.strip():
            raise InvalidInput("cron is required: a cron expression such as '*/5 * * * *'")
        text = " ".join(expression.split())
        if len(text) > MAX_EXPRESSION:
            raise InvalidInput(f"cron is longer than {MAX_EXPRESSION} characters")
        fields = len(text.split())
        if not text.startswith("@") and fields not in (5, 6):
            raise InvalidInput(
                f"cron {text!r} has {fields} fields; use 5 (minute hour day month weekday) "
                "or 6 (second minute hour day month weekday)"
            )
        cron = cls(text, parse_zone(zone_name))
        try:
            cron._iterator(datetime.now(UTC))
        except (CroniterBadCronError, CroniterError, ValueError, KeyError) as exc:
            raise InvalidInput(f"cron {text!r} is not a valid cron expression: {exc}") from None
        try:
            cron.next_after(datetime.now(UTC))
        except CroniterBadDateError:
            raise InvalidInput(f"cron {text!r} never fires (no such date)") from None
        return cron

    def next_after(self, moment: datetime) -> datetime:
        """The first occurrence strictly after ``moment``, in UTC."""
        return self._iterator(moment).get_next(datetime).astimezone(UTC)

    def between(self, first: datetime, until: datetime, limit: int) -> Iterator[datetime]:
        """Occurrences from ``first`` (inclusive, itself an occurrence) to ``until`` (inclusive),
        at most ``limit`` of them, in UTC."""
        moment, count = first, 0
        while moment <= until and count < limit:
            yield moment
            count += 1
            moment = self.next_after(moment)

    def _iterator(self, moment: datetime) -> croniter:
        local = moment.astimezone(self.zone)
        return croniter(self.expression, local, second_at_beginning=True)
