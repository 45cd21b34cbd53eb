"""What each operation costs in S3 requests (counted on the client's event hooks)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from codeactions_core.model import CodeLog, CodeRun, LogType, RunStatus
from codeactions_core.testing.log_store_contract import located


def write_run(
    log_store, count: int, code_id: str | None = None, at: datetime | None = None
) -> CodeRun:
    run = CodeRun(
        id=str(uuid.uuid4()), code_id=code_id or str(uuid.uuid4()), status=RunStatus.COMPLETED
    )
    lines = [
        CodeLog(id="", run_id=run.id, code_id=run.code_id, type=LogType.INFO, content=f"line {i}")
        for i in range(count)
    ]
    if at is not None:
        for line in lines:
            line.created_at = line.updated_at = at
    return located(run, log_store.add_many(lines))


def test_a_located_run_is_one_listing_and_one_read_per_line_of_the_page(log_store, count_calls):
    run = write_run(log_store, 12)
    calls = count_calls(log_store)
    page = log_store.list_by_run(run, page=2, per_page=5)
    assert [line.content for line in page.items] == [f"line {i}" for i in range(5, 10)]
    assert page.total == 12
    assert dict(calls) == {"ListObjectsV2": 1, "GetObject": 5}


def test_a_code_listing_is_one_index_listing_and_the_page_reads(log_store, count_calls):
    first = write_run(log_store, 3)
    write_run(log_store, 4, code_id=first.code_id)
    calls = count_calls(log_store)
    page = log_store.list_by_code(first.code_id, page=1, per_page=5)
    assert [line.content for line in page.items] == [
        "line 3",
        "line 2",
        "line 1",
        "line 0",
        "line 2",
    ]
    assert page.total == 7
    assert dict(calls) == {"ListObjectsV2": 1, "GetObject": 5}


def test_writing_is_one_put_per_line_plus_one_index_entry(log_store, count_calls):
    calls = count_calls(log_store)
    write_run(log_store, 7)
    assert dict(calls) == {"PutObject": 8}


def test_get_is_one_small_listing_and_one_read(log_store, count_calls):
    run = write_run(log_store, 3)
    line = log_store.list_by_run(run, page=1, per_page=1).items[0]
    calls = count_calls(log_store)
    assert log_store.get(line.id) == line
    assert dict(calls) == {"ListObjectsV2": 1, "GetObject": 1}


def test_deleting_sends_batches_of_at_most_a_thousand_keys(log_store, bucket_keys):
    sizes: list[int] = []
    log_store.client.meta.events.register(
        "provide-client-params.s3.DeleteObjects",
        lambda params, **_: sizes.append(len(params["Delete"]["Objects"])),
    )
    write_run(log_store, 620, at=datetime(2020, 1, 1, 12, tzinfo=UTC))
    keep = write_run(log_store, 1, at=datetime(2020, 1, 2, tzinfo=UTC))
    cutoff = datetime(2020, 1, 2, 23, 59, tzinfo=UTC)
    assert log_store.delete_older_than(cutoff, 600) == 600
    assert sizes == [
        501,
        101,
    ]  # 500 lines and their index entry, then the rest of the limit and it again
    assert log_store.delete_older_than(cutoff, 600) == 20
    assert log_store.delete_older_than(cutoff, 600) == 0
    remaining = bucket_keys()
    assert len(remaining) == 2 and all(keep.id in key for key in remaining)
