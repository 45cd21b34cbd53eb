"""codeactions_core.settings: every variable of COMPAT.md, typed, validated, documented."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

from codeactions_core.errors import ConfigurationError
from codeactions_core.plugins import declared_settings, get_plugin_manager, load_settings
from codeactions_core.settings import (
    UNUSED_SETTINGS,
    PluginSettings,
    Settings,
    StoreType,
    at_least,
    describe_settings,
    ignored_variables,
    parse_bool,
    setting,
)

ROOT = Path(__file__).resolve().parents[1]
COMPAT_VARIABLES = """HOST PORT DB_TYPE DB_URI DB_NAME DB_MAX_POOL_SIZE MONGO_DB_URI MONGO_DB_NAME
AUTH_TOKEN ENVIRONMENT LOG_LEVEL SENTRY_DSN REDIS CODE_LIMITER_MAX_REQUESTS
CODE_LIMITER_WINDOW_WINDOW CLEANER_SCHEDULE_TIME CLEANER_RETENTION_PERIOD BLACKLIST SKIPLIST
S3_ENABLED S3_REGION
S3_BUCKET_NAME S3_ACCESS_KEY_ID S3_SECRET_ACCESS_KEY S3_PREFIX S3_ENDPOINT WORKER_POOL_SIZE
WORKER_POOL_QUEUE_SIZE HEALTH_CHECK_CACHE_TIME OIDC_REALM OIDC_HOST OIDC_AUTH_ENABLED
RESOURCE_ENABLED CPU_SHARES CPU_QUOTA MEMORY_LIMIT MEMORY_RESERVATION RABBITMQ_URL
PROJECT_EXCHANGE PROJECT_QUEUE PERMISSION_EXCHANGE""".split()  # noqa: SIM905


def every_spec():
    """The core's settings and those every installed plugin declares."""
    sections = declared_settings(get_plugin_manager(Settings()))
    return [
        *describe_settings(Settings),
        *(spec for section in sections for spec in describe_settings(section)),
    ]


def test_every_compat_variable_is_read():
    names = {spec.env for spec in every_spec()} | set(UNUSED_SETTINGS)  # accepted, ignored
    missing = {f"FLOWS_CODE_ACTIONS_{name}" for name in COMPAT_VARIABLES} - names
    assert not missing
    assert "FLOW_CODE_ACTIONS_PERMISSION_QUEUE" in names


def test_defaults_without_environment():
    settings = Settings.from_env({})
    assert (settings.host, settings.port, settings.db_type) == ("0.0.0.0", 8050, "sqlite")
    assert (settings.code_limiter_max_requests, settings.code_limiter_window) == (600, 60)
    assert (settings.worker_pool_size, settings.worker_pool_queue_size) == (4, 100)
    assert (settings.cleaner_schedule_time, settings.cleaner_retention_period) == ("01:00", 30)
    assert settings.permission_queue == "code-actions-permissions"


def test_values_are_parsed_and_typed():
    settings = load_settings(
        {
            "FLOWS_CODE_ACTIONS_PORT": "9000",
            "FLOWS_CODE_ACTIONS_DB_TYPE": "PostgreSQL",
            "FLOWS_CODE_ACTIONS_BLACKLIST": " os.system, subprocess ,,",
            "FLOWS_CODE_ACTIONS_HEALTH_CHECK_CACHE_TIME": "1.5",
            "FLOWS_CODE_ACTIONS_CODE_LIMITER_WINDOW_WINDOW": "30",
            "FLOWS_CODE_ACTIONS_CLEANER_SCHEDULE_TIME": "3:05",
            "FLOW_CODE_ACTIONS_PERMISSION_QUEUE": "perms",
            "CODEACTIONS_DISABLE_PLUGINS": "mongo, s3",
        }
    )
    assert (settings.port, settings.db_type) == (9000, "postgres")
    assert settings.blacklist == ("os.system", "subprocess")
    assert (settings.health_check_cache_time, settings.code_limiter_window) == (1.5, 30)
    assert (settings.cleaner_schedule_time, settings.permission_queue) == ("03:05", "perms")
    assert settings.disable_plugins == ("mongo", "s3")


def test_empty_values_count_as_unset():
    assert (
        Settings.from_env({"FLOWS_CODE_ACTIONS_PORT": "", "FLOWS_CODE_ACTIONS_DB_TYPE": " "}).port
        == 8050
    )


def test_permission_queue_alias_with_the_s():
    assert Settings.from_env({"FLOWS_CODE_ACTIONS_PERMISSION_QUEUE": "q"}).permission_queue == "q"


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("FLOWS_CODE_ACTIONS_PORT", "eighty", "integer"),
        ("FLOWS_CODE_ACTIONS_PORT", "70000", "port"),
        (
            "FLOWS_CODE_ACTIONS_DB_TYPE",
            "oracle",
            "installed store types: mongodb, postgres, sqlite",
        ),
        ("FLOWS_CODE_ACTIONS_DB_TYPE", "no such store", "store name"),
        ("FLOWS_CODE_ACTIONS_S3_ENABLED", "maybe", "true or false"),
        ("FLOWS_CODE_ACTIONS_GO_BUILD_TIMEOUT", "1", "at least 5"),
        ("FLOWS_CODE_ACTIONS_NODE_WARM_PROCESSES", "-1", "at least 0"),
        ("FLOWS_CODE_ACTIONS_OIDC_TIMEOUT_SECONDS", "never", "number"),
        ("FLOWS_CODE_ACTIONS_WORKER_POOL_SIZE", "0", "at least 1"),
        ("FLOWS_CODE_ACTIONS_CLEANER_SCHEDULE_TIME", "25:00", "HH:MM"),
        ("FLOWS_CODE_ACTIONS_HEALTH_CHECK_CACHE_TIME", "soon", "number"),
        ("FLOWS_CODE_ACTIONS_LOG_LEVEL", "loud", "debug"),
        ("FLOWS_CODE_ACTIONS_CLEANER_RETENTION_PERIOD", "-1", "at least"),
    ],
)
def test_a_bad_value_names_its_variable(variable, value, words):
    with pytest.raises(ConfigurationError) as caught:
        load_settings({variable: value})
    assert caught.value.message.startswith(variable + ":")
    assert words in caught.value.message


@pytest.mark.parametrize(
    ("environment", "variable"),
    [
        ({"FLOWS_CODE_ACTIONS_S3_ENABLED": "true"}, "FLOWS_CODE_ACTIONS_S3_BUCKET_NAME"),
        ({"FLOWS_CODE_ACTIONS_OIDC_AUTH_ENABLED": "true"}, "FLOWS_CODE_ACTIONS_OIDC_HOST"),
        (
            {
                "FLOWS_CODE_ACTIONS_DB_TYPE": "postgres",
                "FLOWS_CODE_ACTIONS_DB_URI": "sqlite:///x.db",
            },
            "FLOWS_CODE_ACTIONS_DB_URI",
        ),
    ],
)
def test_inconsistent_settings_name_the_variable(environment, variable):
    with pytest.raises(ConfigurationError, match=variable):
        load_settings(environment)


@dataclass(frozen=True)
class VaultSettings(PluginSettings):
    """Settings of a plugin in this module:"""

    vault_token: str = setting("", "A token.", secret=True)


def test_secrets_stay_out_of_repr():
    settings = Settings(auth_token="tok-secret", db_uri="postgres://u:pw-secret@h/d").with_plugin(
        VaultSettings(vault_token="s3-secret")
    )
    text = repr(settings)
    assert "tok-secret" not in text and "s3-secret" not in text and "pw-secret" not in text


def test_readme_documents_every_variable():
    readme = (ROOT / "README.md").read_text()
    undocumented = [spec.env for spec in every_spec() if f"`{spec.env}`" not in readme]
    assert not undocumented


# Reading the environment; a sandboxed child setting its own (os.environ.clear/update) is not.
ENVIRONMENT_READ = r"os\.getenv|getenv\(|os\.environ(?!\.(clear|update)\()"


def test_nothing_but_settings_reads_the_environment():
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    offenders = [
        name
        for name in listed
        if "tests/" not in name
        and not name.endswith("settings.py")
        and not name.startswith("codeactions_core/settings/")
        and re.search(ENVIRONMENT_READ, (ROOT / name).read_text())
    ]
    assert listed and not offenders


# Settings a plugin declares (the codeactions_settings hook) ---------------------------------------


@dataclass(frozen=True)
class GreetingSettings(PluginSettings):
    """Settings of a plugin in this module:"""

    store_types: ClassVar[tuple[StoreType, ...]] = (StoreType("sqlite", ("file",), ("lite",)),)

    greeting_text: str = setting("hello", "What it says.")
    greeting_times: int = setting(1, "How often.", parse=at_least(1))
    greeting_loud: bool = setting(
        False, "Unset: on when GREETING_TEXT ends with `!`.", parse=parse_bool
    )

    @classmethod
    def legacy_defaults(cls, values, settings):
        return {"greeting_loud": True} if values.get("greeting_text", "").endswith("!") else {}

    def validate(self, settings):
        if self.greeting_times > settings.worker_pool_size:
            raise ConfigurationError("FLOWS_CODE_ACTIONS_GREETING_TIMES: at most WORKER_POOL_SIZE")


def greeting(environ):
    return Settings.from_env(environ, plugins=[GreetingSettings]).plugin(GreetingSettings)


def test_a_plugins_settings_are_read_derived_and_checked_like_the_cores():
    assert greeting({}) == GreetingSettings()
    assert greeting(
        {"FLOWS_CODE_ACTIONS_GREETING_TEXT": "hi!", "FLOWS_CODE_ACTIONS_GREETING_TIMES": "2"}
    ) == GreetingSettings(greeting_text="hi!", greeting_times=2, greeting_loud=True)
    with pytest.raises(
        ConfigurationError, match="^FLOWS_CODE_ACTIONS_GREETING_TIMES: must be at least 1"
    ):
        greeting({"FLOWS_CODE_ACTIONS_GREETING_TIMES": "0"})
    with pytest.raises(ConfigurationError, match="^FLOWS_CODE_ACTIONS_GREETING_TIMES: at most"):
        greeting({"FLOWS_CODE_ACTIONS_GREETING_TIMES": "9"})


def test_db_type_must_be_one_a_plugin_declares():
    with pytest.raises(ConfigurationError, match="installed store types: sqlite") as caught:
        greeting({"FLOWS_CODE_ACTIONS_DB_TYPE": "postgres"})
    assert caught.value.message.startswith("FLOWS_CODE_ACTIONS_DB_TYPE: ")
    assert Settings.from_env({"FLOWS_CODE_ACTIONS_DB_TYPE": "anything"}).db_type == "anything"
    assert (
        Settings.from_env(
            {"FLOWS_CODE_ACTIONS_DB_TYPE": "Lite"}, plugins=[GreetingSettings]
        ).db_type
        == "sqlite"
    )
    by_uri = Settings.from_env(
        {"FLOWS_CODE_ACTIONS_DB_URI": "file:///x"}, plugins=[GreetingSettings]
    )
    assert by_uri.db_type == "sqlite"


def test_a_variable_declared_twice_stops_the_start():
    @dataclass(frozen=True)
    class Clashing(PluginSettings):
        port: int = setting(1, "The core's port, again.")

    with pytest.raises(
        ConfigurationError, match="^FLOWS_CODE_ACTIONS_PORT: declared by both the core"
    ):
        Settings.from_env({}, plugins=[GreetingSettings, Clashing])


def test_settings_built_in_code_take_plugin_values_by_name():
    settings = Settings.of(GreetingSettings, port=9000, greeting_times=3)
    assert (settings.port, settings.plugin(GreetingSettings).greeting_times) == (9000, 3)
    assert Settings().plugin(GreetingSettings) == GreetingSettings()  # not read: defaults
    with pytest.raises(TypeError, match="no such setting: greeting_volume"):
        Settings.of(GreetingSettings, greeting_volume=11)


def test_only_variables_nobody_declares_are_ignored():
    environ = {"FLOWS_CODE_ACTIONS_GREETING_TEXT": "hi", "FLOWS_CODE_ACTIONS_NO_SUCH": "x"}
    assert ignored_variables(environ) == sorted(environ)
    assert ignored_variables(environ, plugins=[GreetingSettings]) == ["FLOWS_CODE_ACTIONS_NO_SUCH"]
