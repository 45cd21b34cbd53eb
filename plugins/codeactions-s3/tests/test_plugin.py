"""The hook: S3 only when enabled; otherwise the database keeps the logs."""

from __future__ import annotations

import subprocess
import sys

from codeactions_core.plugins import describe_plugins, get_plugin_manager
from codeactions_core.services import build_services
from codeactions_core.settings import Settings, inherited_environment
from codeactions_s3 import codeactions_log_store
from codeactions_s3.store import S3LogStore


def test_disabled_returns_none_and_the_database_keeps_logs(tmp_path):
    settings = Settings(data_dir=str(tmp_path), s3_bucket_name="ignored")
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
        assert services.log_store.target.bucket == settings.s3_bucket_name
        services.log_store.ping()
    finally:
        services.log_store.close()
        services.close()


def test_listed_as_a_plugin_of_its_own_distribution(tmp_path):
    infos = {info.name: info for info in describe_plugins(get_plugin_manager(Settings(data_dir=str(tmp_path))))}
    assert infos["s3"].distribution == "codeactions-s3"
    assert infos["s3"].hooks == ("codeactions_log_store",)


def test_boto3_is_imported_only_when_s3_is_enabled():
    probe = "import sys, codeactions_s3; print('boto3' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], env=inherited_environment(),
                            capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout.strip()) == (0, "False"), result.stderr
