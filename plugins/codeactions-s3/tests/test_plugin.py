"""The hook: S3 only when enabled; otherwise the database keeps the logs."""

from __future__ import annotations

import subprocess
import sys

import pytest
from codeactions_s3 import codeactions_log_store
from codeactions_s3.settings import S3Settings
from codeactions_s3.store import S3LogStore

from codeactions_core.errors import ConfigurationError
from codeactions_core.plugins import describe_plugins, get_plugin_manager, load_settings
from codeactions_core.settings import Settings, inherited_environment
from codeactions_core.wiring import build_services


def test_disabled_returns_none_and_the_database_keeps_logs(tmp_path):
    settings = Settings.of(S3Settings, data_dir=str(tmp_path), s3_bucket_name="ignored")
    assert codeactions_log_store(settings=settings, store=None) is None
    services = build_services(settings)
    try:
        assert services.log_store is services.store.logs
    finally:
        services.close()


def test_enabled_the_services_log_to_s3(tmp_path, s3_settings):
    settings = s3_settings(data_dir=str(tmp_path))
    services = build_services(settings)
    try:
        assert isinstance(services.log_store, S3LogStore)
        assert services.log_store.target.bucket == settings.plugin(S3Settings).s3_bucket_name
        services.log_store.ping()
    finally:
        services.log_store.close()
        services.close()


def test_listed_as_a_plugin_of_its_own_distribution(tmp_path):
    infos = {
        info.name: info
        for info in describe_plugins(get_plugin_manager(Settings(data_dir=str(tmp_path))))
    }
    assert infos["s3"].distribution == "codeactions-s3"
    assert infos["s3"].hooks == ("codeactions_log_store", "codeactions_settings")


def test_boto3_is_imported_only_when_s3_is_enabled():
    probe = "import sys, codeactions_s3; print('boto3' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env=inherited_environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout.strip()) == (0, "False"), result.stderr


def test_s3_is_on_when_a_bucket_is_named_and_s3_enabled_is_unset():
    def s3_enabled(environ: dict[str, str]) -> bool:
        return load_settings(environ).plugin(S3Settings).s3_enabled

    assert s3_enabled({"FLOWS_CODE_ACTIONS_S3_BUCKET_NAME": "logs"}) is True
    assert (
        s3_enabled(
            {"FLOWS_CODE_ACTIONS_S3_BUCKET_NAME": "logs", "FLOWS_CODE_ACTIONS_S3_ENABLED": "false"}
        )
        is False
    )
    assert s3_enabled({}) is False


def test_s3_settings_are_read_and_checked_at_start():
    settings = load_settings(
        {
            "FLOWS_CODE_ACTIONS_S3_ENABLED": "TRUE",
            "FLOWS_CODE_ACTIONS_S3_BUCKET_NAME": "logs",
            "FLOWS_CODE_ACTIONS_S3_PREFIX": "tenant",
        }
    )
    assert settings.plugin(S3Settings) == S3Settings(
        s3_enabled=True, s3_bucket_name="logs", s3_prefix="tenant"
    )
    with pytest.raises(ConfigurationError, match="^FLOWS_CODE_ACTIONS_S3_BUCKET_NAME: required"):
        load_settings({"FLOWS_CODE_ACTIONS_S3_ENABLED": "true"})
    secret = Settings.of(S3Settings, s3_secret_access_key="s3-secret-value")
    assert "s3-secret-value" not in repr(settings) + repr(secret)
