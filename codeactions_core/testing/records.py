"""What the store contracts create and check alike: a new code's fields, UTC timestamps."""

from __future__ import annotations

from datetime import datetime, timedelta

from codeactions_core.model import CodeType, NewCode


def new_code(**overrides: object) -> NewCode:
    fields: dict[str, object] = {
        "name": "greeter",
        "type": CodeType.ENDPOINT,
        "source": "def Run(engine):\n    engine.result.set('olá ✓')\n",
        "language": "python",
        "project_uuid": "project-a",
        "timeout": 60,
    }
    fields.update(overrides)
    return NewCode(**fields)  # type: ignore[arg-type]


def assert_utc(moment: datetime) -> None:
    assert moment.tzinfo is not None and moment.utcoffset() == timedelta(0)
