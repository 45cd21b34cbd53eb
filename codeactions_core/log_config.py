"""Process-wide logging and error reporting."""

from __future__ import annotations

import importlib
import logging

from codeactions_core.settings import Settings

FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"

log = logging.getLogger(__name__)


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format=FORMAT, force=True)


def configure_error_reporting(settings: Settings) -> bool:
    """Send errors to Sentry when a DSN is set and ``sentry-sdk`` is installed."""
    if not settings.sentry_dsn:
        return False
    try:
        sentry_sdk = importlib.import_module("sentry_sdk")
    except ImportError:
        log.warning("FLOWS_CODE_ACTIONS_SENTRY_DSN is set but sentry-sdk is not installed: "
                    "errors are only logged (pip install sentry-sdk)")
        return False
    sentry_sdk.init(dsn=settings.sentry_dsn, environment=settings.environment)
    return True
