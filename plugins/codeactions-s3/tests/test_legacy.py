"""Runs the old Go service logged: no location on the run, ids that say nothing."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from codeactions_core.model import CodeRun, LogType, RunStatus

RUN_CREATED = datetime(2024, 3, 5, 23, 59, 30, tzinfo=UTC)


@pytest.fixture
def legacy_run() -> CodeRun:
    return CodeRun(
        id=str(uuid.uuid4()),
        code_id=str(uuid.uuid4()),
        status=RunStatus.COMPLETED,
        created_at=RUN_CREATED,
        extra={"status_code": 200, "content_type": "text"},
    )


@pytest.fixture
def put_legacy(bucket_client, s3_bucket):
    """Write a line the way the old service did (its own id, its own JSON)."""

    def put(run: CodeRun, day: str, name: str, content: str, created_at: str) -> str:
        key = f"codeactions/logs/{day}/{run.id}/{run.code_id}/{name}.json"
        body = {
            "id": name,
            "run_id": run.id,
            "code_id": run.code_id,
            "type": "info",
            "content": content,
            "created_at": created_at,
            "updated_at": created_at,
        }
        bucket_client.put_object(
            Bucket=s3_bucket,
            Key=key,
            Body=json.dumps(body).encode(),
            ContentType="application/json",
            Metadata={
                "run-id": run.id,
                "code-id": run.code_id,
                "log-type": "info",
                "created-at": created_at,
            },
        )
        return key

    return put


def test_found_on_its_day_and_the_next_in_order(log_store, legacy_run, put_legacy, count_calls):
    put_legacy(
        legacy_run, "2024/03/06", "b-after-midnight", "third", "2024-03-06T00:00:00.5Z"
    )  # uploaded first
    put_legacy(legacy_run, "2024/03/05", "z-first", "first", "2024-03-05T23:59:59.123456789Z")
    put_legacy(legacy_run, "2024/03/05", "z-second", "second", "2024-03-05T23:59:59.2Z")
    calls = count_calls(log_store)
    page = log_store.list_by_run(legacy_run, page=1, per_page=20)
    assert [line.content for line in page.items] == ["first", "second", "third"]
    assert calls["ListObjectsV2"] == 2  # one per day searched, never more
    first = page.items[0]
    assert (first.id, first.run_id, first.code_id, first.type) == (
        "z-first",
        legacy_run.id,
        legacy_run.code_id,
        LogType.INFO,
    )
    assert first.created_at == datetime(2024, 3, 5, 23, 59, 59, 123456, tzinfo=UTC)


def test_the_search_is_bounded_to_two_days(log_store, legacy_run, put_legacy):
    put_legacy(legacy_run, "2024/03/05", "a", "kept", "2024-03-05T23:59:40Z")
    put_legacy(legacy_run, "2024/03/07", "b", "too late to be this run's", "2024-03-07T00:00:00Z")
    put_legacy(legacy_run, "2024/03/04", "c", "before the run", "2024-03-04T00:00:00Z")
    page = log_store.list_by_run(legacy_run, page=1, per_page=20)
    assert ([line.content for line in page.items], page.total) == (["kept"], 1)


def test_a_line_without_json_fields_takes_them_from_its_key(
    log_store, legacy_run, bucket_client, s3_bucket
):
    key = (
        f"codeactions/logs/2024/03/05/{legacy_run.id}/{legacy_run.code_id}/"
        "5f1a2b3c4d5e6f7a8b9c0d1e.json"
    )
    bucket_client.put_object(
        Bucket=s3_bucket, Key=key, Body=b'{"content": "bare", "type": "ERROR"}'
    )
    (line,) = log_store.list_by_run(legacy_run, page=1, per_page=20).items
    assert (line.id, line.run_id, line.code_id, line.type, line.content) == (
        "5f1a2b3c4d5e6f7a8b9c0d1e",
        legacy_run.id,
        legacy_run.code_id,
        LogType.ERROR,
        "bare",
    )
    assert log_store.get("5f1a2b3c4d5e6f7a8b9c0d1e") is None  # old ids name no object: documented


def test_old_days_are_deleted_with_the_new(log_store, legacy_run, put_legacy, bucket_keys):
    put_legacy(legacy_run, "2024/03/05", "a", "old", "2024-03-05T23:59:40Z")
    put_legacy(legacy_run, "2024/03/06", "b", "kept", "2024-03-06T00:00:01Z")
    assert log_store.delete_older_than(datetime(2024, 3, 6, 12, tzinfo=UTC), 100) == 1
    assert [key.rsplit("/", 1)[1] for key in bucket_keys()] == ["b.json"]
