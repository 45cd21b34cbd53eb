"""The shared LogStore contract against S3LogStore on moto's real S3 server."""

from __future__ import annotations

import pytest

from codeactions_core.testing.log_store_contract import LogStoreContract


class TestS3LogStore(LogStoreContract):
    @pytest.fixture(params=["codeactions", ""], ids=["prefixed", "no-prefix"])
    def log_store(self, request, new_log_store):
        return new_log_store(s3_prefix=request.param)
