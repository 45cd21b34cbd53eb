"""The settings of codeactions-s3, declared through the ``codeactions_settings`` hook."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from codeactions_core.errors import ConfigurationError
from codeactions_core.settings import PREFIX, PluginSettings, Settings, parse_bool, setting


@dataclass(frozen=True)
class S3Settings(PluginSettings):
    """Settings of codeactions-s3 (run logs in S3):"""

    s3_enabled: bool = setting(
        False,
        "Store run logs in S3 instead of the database. Unset: on when `S3_BUCKET_NAME` is "
        "set (the old default).",
        parse=parse_bool,
    )
    s3_region: str = setting("us-east-1", "S3 region.")
    s3_bucket_name: str = setting("", "S3 bucket for logs (required with `S3_ENABLED`).")
    s3_access_key_id: str = setting(
        "", "S3 access key id (else the AWS default chain).", secret=True
    )
    s3_secret_access_key: str = setting("", "S3 secret access key.", secret=True)
    s3_prefix: str = setting("codeactions", "Key prefix of log objects.")
    s3_endpoint: str = setting("", "Custom S3 endpoint (LocalStack, MinIO, moto).")

    @classmethod
    def legacy_defaults(cls, values: Mapping[str, Any], settings: Settings) -> dict[str, Any]:
        """S3 on when a bucket is named and S3_ENABLED is unset, as the old service had it."""
        if "s3_enabled" not in values and values.get("s3_bucket_name"):
            return {"s3_enabled": True}
        return {}

    def validate(self, settings: Settings) -> None:
        if self.s3_enabled and not self.s3_bucket_name:
            raise ConfigurationError(f"{PREFIX}S3_BUCKET_NAME: required when S3_ENABLED is true")
