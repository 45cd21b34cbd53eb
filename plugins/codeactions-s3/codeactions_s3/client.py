"""The boto3 client from settings, and S3 failures turned into safe StoreErrors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from codeactions_core.errors import StoreError
from codeactions_core.settings import Settings
from codeactions_s3.settings import S3Settings

MISSING_BUCKET_CODES = {"NoSuchBucket", "404"}
REFUSED_CODES = {
    "AccessDenied",
    "403",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "AllAccessDisabled",
}


@dataclass(frozen=True)
class S3Target:
    """Where the logs go, as shown in messages: never credentials."""

    bucket: str
    endpoint: str
    region: str

    @property
    def where(self) -> str:
        """``bucket 'b' at host:port`` (custom endpoint) or ``in region r`` (AWS)."""
        if self.endpoint:
            parts = urlsplit(self.endpoint)
            host = parts.hostname or "?"
            return f"bucket {self.bucket!r} at {host}{f':{parts.port}' if parts.port else ''}"
        return f"bucket {self.bucket!r} in region {self.region}"


def target_of(settings: Settings) -> S3Target:
    s3 = settings.plugin(S3Settings)
    return S3Target(s3.s3_bucket_name, s3.s3_endpoint, s3.s3_region)


def make_client(settings: Settings, *, pool_size: int, attempts: int = 3) -> Any:
    """A thread-safe S3 client; path-style addressing on custom endpoints (MinIO, moto)."""
    s3 = settings.plugin(S3Settings)
    config = Config(
        region_name=s3.s3_region or None,
        connect_timeout=5,
        read_timeout=15,
        retries={"max_attempts": attempts, "mode": "standard"},
        max_pool_connections=pool_size,
        s3={"addressing_style": "path"} if s3.s3_endpoint else {},
    )
    credentials = {}
    if s3.s3_access_key_id:
        credentials = {
            "aws_access_key_id": s3.s3_access_key_id,
            "aws_secret_access_key": s3.s3_secret_access_key,
        }
    session = boto3.session.Session()
    return session.client("s3", endpoint_url=s3.s3_endpoint or None, config=config, **credentials)


def error_code(exc: ClientError) -> str:
    """S3's error code, or the HTTP status of a bodiless answer (HeadBucket: ``404``)."""
    code = exc.response.get("Error", {}).get("Code")
    return str(code or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))


@contextmanager
def s3_errors(target: S3Target, action: str) -> Iterator[None]:
    """Re-raise any S3 failure while ``action`` as a StoreError that names the bucket."""
    try:
        yield
    except ClientError as exc:
        code = error_code(exc)
        if code in MISSING_BUCKET_CODES:
            raise StoreError(
                f"S3 {target.where} does not exist (while {action}); create it, "
                "logs are not stored elsewhere"
            ) from None
        if code in REFUSED_CODES:
            raise StoreError(
                f"S3 refused access to {target.where} ({code}) while {action}; "
                "check the S3 credentials"
            ) from None
        raise StoreError(f"S3 error {code or 'unknown'} on {target.where} while {action}") from None
    except (NoCredentialsError, PartialCredentialsError):
        raise StoreError(
            f"no S3 credentials for {target.where}: set FLOWS_CODE_ACTIONS_S3_ACCESS_KEY_ID and "
            "FLOWS_CODE_ACTIONS_S3_SECRET_ACCESS_KEY, or configure the AWS default chain"
        ) from None
    except (BotoConnectionError, HTTPClientError):
        raise StoreError(
            f"S3 is unreachable: {target.where} did not answer while {action}"
        ) from None
    except BotoCoreError as exc:
        raise StoreError(
            f"S3 failed on {target.where} while {action} ({type(exc).__name__})"
        ) from None
