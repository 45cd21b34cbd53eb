"""codeactions-s3: run logs in S3, laid out as the old service did (COMPAT.md "S3 logs").

Active when ``FLOWS_CODE_ACTIONS_S3_ENABLED`` is true; the bucket must exist
(it is never created). boto3 is imported only then, so that processes without
S3 start as fast as before. See ``codeactions_s3.store`` for what each
operation costs and ``codeactions_s3.keys`` for the key layout.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from codeactions_core import hookimpl
from codeactions_core.settings import Settings
from codeactions_core.store import Store
from codeactions_s3.settings import S3Settings

if TYPE_CHECKING:
    from codeactions_s3.store import S3LogStore

__all__ = ["S3Settings", "codeactions_log_store", "codeactions_settings"]


@hookimpl(trylast=True)
def codeactions_settings() -> list[type[S3Settings]]:
    return [S3Settings]


@hookimpl(trylast=True)
def codeactions_log_store(settings: Settings, store: Store) -> S3LogStore | None:
    """The S3 log store when S3 is enabled; otherwise leave logs to the database."""
    if not settings.plugin(S3Settings).s3_enabled:
        return None
    from codeactions_s3.store import S3LogStore

    return S3LogStore.from_settings(settings)
