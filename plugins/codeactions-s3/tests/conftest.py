from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator

import pytest
from codeactions_s3.settings import S3Settings
from codeactions_s3.store import S3LogStore
from codeactions_s3.testing import S3Server, start_s3_server

from codeactions_core.settings import Settings, SuiteEnvironment


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> Iterator[S3Server]:
    """moto's S3 server in a child process, for the whole session (``codeactions_s3.testing``)."""
    if SuiteEnvironment.from_env().require_services:
        import moto.server  # noqa: F401 - CI must have it: fail loudly rather than skip
    pytest.importorskip("moto.server", reason="moto[server] is not installed")
    server = start_s3_server(tmp_path_factory.mktemp("s3"))
    yield server
    server.stop()


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> str:
    """A fresh, empty bucket on the session's S3 server."""
    return s3_server.create_bucket()


@pytest.fixture
def s3_settings(s3_server, s3_bucket) -> Callable[..., Settings]:
    """Settings of the S3 log store on this test's fresh bucket (overrides as keywords)."""

    def make(**overrides: object) -> Settings:
        return Settings.of(S3Settings, **{**s3_server.settings_values(s3_bucket), **overrides})

    return make


@pytest.fixture
def new_log_store(s3_settings) -> Iterator[Callable[..., S3LogStore]]:
    """A factory of S3 log stores on this test's bucket, closed afterwards."""
    stores: list[S3LogStore] = []

    def create(**overrides: object) -> S3LogStore:
        store = S3LogStore.from_settings(s3_settings(**overrides))
        stores.append(store)
        return store

    yield create
    for store in stores:
        store.close()


@pytest.fixture
def log_store(new_log_store) -> S3LogStore:
    return new_log_store()


@pytest.fixture
def bucket_client(s3_server):
    """A plain client of the S3 server, to look at the bucket from outside the store."""
    return s3_server.client()


@pytest.fixture
def count_calls() -> Callable[[S3LogStore], Counter]:
    """``count_calls(store)``: a live count of the S3 operations its client sends, by name."""

    def start(store: S3LogStore) -> Counter:
        calls: Counter = Counter()

        def seen(model, **_: object) -> None:
            calls[model.name] += 1

        store.client.meta.events.register("before-call.s3", seen)
        return calls

    return start


@pytest.fixture
def bucket_keys(bucket_client, s3_bucket) -> Callable[[str], list[str]]:
    """``bucket_keys(prefix="")``: every key of this test's bucket under ``prefix``, in order."""

    def keys(prefix: str = "") -> list[str]:
        pages = bucket_client.get_paginator("list_objects_v2").paginate(
            Bucket=s3_bucket, Prefix=prefix
        )
        return [item["Key"] for page in pages for item in page.get("Contents", ())]

    return keys
