"""What changed between two versions of a flow, step by step (steps matched by id)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

STEP_FIELDS = ("type", "name", "config", "continue_on_error")


def diff_steps(before: Sequence[dict[str, Any]], after: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``added`` and ``removed`` steps, ``changed`` ones with each changed field's values,
    and whether the order of the steps both versions have changed."""
    old = {str(step.get("id")): step for step in before}
    new = {str(step.get("id")): step for step in after}
    changed = []
    for step_id in (step_id for step_id in new if step_id in old):
        fields = {
            name: {"before": old[step_id].get(name), "after": new[step_id].get(name)}
            for name in STEP_FIELDS
            if old[step_id].get(name) != new[step_id].get(name)
        }
        if fields:
            changed.append({"id": step_id, "changes": fields})
    kept_before = [step_id for step_id in old if step_id in new]
    kept_after = [step_id for step_id in new if step_id in old]
    return {
        "added": [step for step_id, step in new.items() if step_id not in old],
        "removed": [step for step_id, step in old.items() if step_id not in new],
        "changed": changed,
        "reordered": kept_before != kept_after,
    }
