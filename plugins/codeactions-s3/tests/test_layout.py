"""Objects exactly as the old service laid them out (COMPAT.md "S3 logs"), plus the code index."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta

from codeactions_core.model import CodeLog, CodeRun, LogType, RunStatus

BEFORE_MIDNIGHT = datetime(2024, 3, 5, 23, 59, 59, 999_999, tzinfo=UTC)


def run_and_lines(count: int = 2, at: datetime = BEFORE_MIDNIGHT) -> tuple[CodeRun, list[CodeLog]]:
    run = CodeRun(
        id=str(uuid.uuid4()), code_id=str(uuid.uuid4()), status=RunStatus.COMPLETED, created_at=at
    )
    kinds = [LogType.INFO, LogType.ERROR, LogType.DEBUG]
    lines = [
        CodeLog(
            id="",
            run_id=run.id,
            code_id=run.code_id,
            type=kinds[i % 3],
            content=f"olá {i}",
            created_at=at + timedelta(microseconds=2 * i),
            updated_at=at + timedelta(microseconds=2 * i),
        )
        for i in range(count)
    ]
    return run, lines


def test_keys_body_and_metadata_are_the_old_services(
    log_store, bucket_client, bucket_keys, s3_bucket
):
    run, lines = run_and_lines(2)  # the second line is written after midnight: same day prefix
    location = log_store.add_many(lines)
    assert location == f"codeactions/logs/2024/03/05/{run.id}/"
    keys = bucket_keys("codeactions/logs/")
    id_pattern = rf"{run.id}_\d{{16}}-[0-9a-f]{{6}}-000002-00000[01]"
    assert len(keys) == 2
    for key in keys:
        assert re.fullmatch(
            rf"codeactions/logs/2024/03/05/{run.id}/{run.code_id}/{id_pattern}\.json", key
        )
    for key, line in zip(keys, lines, strict=True):
        stored = bucket_client.get_object(Bucket=s3_bucket, Key=key)
        log_id = key.rsplit("/", 1)[1].removesuffix(".json")
        assert stored["ContentType"] == "application/json"
        assert stored["Metadata"] == {
            "run-id": run.id,
            "code-id": run.code_id,
            "log-type": str(line.type),
            "created-at": line.to_json()["created_at"],
        }
        assert json.loads(stored["Body"].read()) == {**line.to_json(), "id": log_id}
    assert [line.content for line in log_store.list_by_run(run, page=1, per_page=20).items] == [
        "olá 0",
        "olá 1",
    ]


def test_one_index_entry_per_batch_under_the_code(log_store, bucket_client, bucket_keys, s3_bucket):
    run, lines = run_and_lines(3)
    log_store.add_many(lines)
    (entry,) = bucket_keys("codeactions/index/")
    assert re.fullmatch(
        rf"codeactions/index/code/{run.code_id}/\d{{16}}_{run.id}_\d{{16}}-[0-9a-f]{{6}}-000003",
        entry,
    )
    head = bucket_client.head_object(Bucket=s3_bucket, Key=entry)
    assert (head["ContentLength"], head["Metadata"]) == (
        0,
        {"run-id": run.id, "code-id": run.code_id},
    )


def test_the_configured_prefix_leads_every_key(new_log_store, bucket_keys):
    log_store = new_log_store(s3_prefix="/tenant-a/logs-v2/")
    run, lines = run_and_lines(1)
    assert log_store.add_many(lines) == f"tenant-a/logs-v2/logs/2024/03/05/{run.id}/"
    keys = bucket_keys()
    assert len(keys) == 2 and all(key.startswith("tenant-a/logs-v2/") for key in keys)


def test_the_location_still_works_after_the_prefix_changed(new_log_store):
    old, new = new_log_store(s3_prefix="before"), new_log_store(s3_prefix="after")
    run, lines = run_and_lines(2)
    run.extra["logs_location"] = old.add_many(lines)
    assert [line.content for line in new.list_by_run(run, page=1, per_page=20).items] == [
        "olá 0",
        "olá 1",
    ]


def test_a_location_naming_another_run_is_ignored(log_store):
    run, lines = run_and_lines(1)
    location = log_store.add_many(lines)
    stranger = CodeRun(
        id=str(uuid.uuid4()),
        code_id=run.code_id,
        status=RunStatus.COMPLETED,
        created_at=BEFORE_MIDNIGHT,
        extra={"logs_location": location},
    )
    assert log_store.list_by_run(stranger, page=1, per_page=20).total == 0
    assert (
        log_store.list_by_run(run, page=1, per_page=20).total == 1
    )  # found by its day, no location


def test_get_reads_any_line_it_issued(log_store):
    run, lines = run_and_lines(3)
    run.extra["logs_location"] = log_store.add_many(lines)
    listed = log_store.list_by_run(run, page=1, per_page=20).items
    assert [log_store.get(line.id) for line in listed] == listed
    missing = listed[0].id[:-6] + "000009"
    assert log_store.get(missing) is None
