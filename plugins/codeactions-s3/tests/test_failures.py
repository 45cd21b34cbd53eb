"""S3 failures become StoreErrors that name the bucket and never a secret."""

from __future__ import annotations

import uuid

import pytest
from codeactions_s3.settings import S3Settings
from codeactions_s3.store import S3LogStore

from codeactions_core.errors import StoreError
from codeactions_core.model import CodeLog, CodeRun, LogType, RunStatus
from codeactions_core.settings import Settings
from codeactions_core.testing.server import free_port

SECRET = "sup3r-s3cret-key-value"
KEY_ID = "AKIAEXAMPLEKEYID0001"


def a_run_and_line() -> tuple[CodeRun, CodeLog]:
    run = CodeRun(id=str(uuid.uuid4()), code_id=str(uuid.uuid4()), status=RunStatus.COMPLETED)
    return run, CodeLog(id="", run_id=run.id, code_id=run.code_id, type=LogType.INFO, content="x")


def assert_clean(message: str) -> None:
    assert SECRET not in message and KEY_ID not in message


def test_ping_answers_on_a_bucket_that_exists(log_store):
    assert log_store.ping() is None


def test_a_missing_bucket_is_named_and_never_created(new_log_store, bucket_client):
    store = new_log_store(
        s3_bucket_name="no-such-logs-bucket", s3_access_key_id=KEY_ID, s3_secret_access_key=SECRET
    )
    run, line = a_run_and_line()
    missing = "bucket 'no-such-logs-bucket' at 127.0.0.1:\\d+ does not exist"
    for attempt in (
        store.ping,
        lambda: store.add_many([line]),
        lambda: store.list_by_run(run, page=1, per_page=20),
    ):
        with pytest.raises(StoreError, match=missing) as caught:
            attempt()
        assert_clean(caught.value.message)
    assert "no-such-logs-bucket" not in {b["Name"] for b in bucket_client.list_buckets()["Buckets"]}


def test_an_endpoint_that_is_down_is_reported_as_unreachable(caplog):
    settings = Settings.of(
        S3Settings,
        s3_enabled=True,
        s3_bucket_name="logs",
        s3_endpoint=f"http://127.0.0.1:{free_port()}",
        s3_access_key_id=KEY_ID,
        s3_secret_access_key=SECRET,
    )
    store = S3LogStore.from_settings(settings, attempts=1)
    run, line = a_run_and_line()
    try:
        one_id = f"{run.id}_{'0' * 16}-abcdef-000001-000000"
        unreachable = "S3 is unreachable: bucket 'logs' at 127.0.0.1:\\d+ did not answer"
        for attempt in (store.ping, lambda: store.add_many([line]), lambda: store.get(one_id)):
            with pytest.raises(StoreError, match=unreachable) as caught:
                attempt()
            assert_clean(caught.value.message)
    finally:
        store.close()
    assert SECRET not in caplog.text and KEY_ID not in caplog.text
    assert SECRET not in repr(store) and SECRET not in repr(settings)


def test_ids_that_cannot_be_keys_are_refused_before_any_request(log_store, count_calls):
    calls = count_calls(log_store)
    line = CodeLog(
        id="", run_id="../other-run", code_id=str(uuid.uuid4()), type=LogType.INFO, content="x"
    )
    with pytest.raises(StoreError, match="not a valid run id"):
        log_store.add_many([line])
    assert not calls
