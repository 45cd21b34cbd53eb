"""The process environment around the settings: variables no setting reads, those of the
test suite and of ``codeactions client``, and what child processes inherit."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from codeactions_core.settings.core import PluginSettings, Settings
from codeactions_core.settings.parsing import parse_bool
from codeactions_core.settings.spec import PREFIX, describe_settings


def ignored_variables(
    environ: Mapping[str, str] | None = None, plugins: Iterable[type[PluginSettings]] = ()
) -> list[str]:
    """Set ``FLOWS_CODE_ACTIONS_*`` variables neither the core nor the ``plugins`` classes
    use (named once at start)."""
    environ = os.environ if environ is None else environ
    specs = [
        *describe_settings(Settings),
        *(spec for section in plugins for spec in describe_settings(section)),
    ]
    read = {name for spec in specs for name in (spec.env, *spec.aliases)}
    return sorted(
        name
        for name, value in environ.items()
        if value.strip() and name.startswith(PREFIX) and name not in read
    )


@dataclass(frozen=True)
class SuiteEnvironment:
    """Where the test suite finds real services (tests only; not product settings)."""

    require_services: bool = False
    postgres_uri: str = "postgres://postgres@127.0.0.1:5432/postgres"
    redis_url: str = "redis://127.0.0.1:6379/15"
    rabbitmq_url: str = "amqp://guest:guest@127.0.0.1:5672//"
    mongo_uri: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SuiteEnvironment:
        environ = os.environ if environ is None else environ
        defaults = cls()
        return cls(
            require_services=parse_bool(environ.get("CODEACTIONS_REQUIRE_SERVICES") or "0"),
            postgres_uri=environ.get("CODEACTIONS_TEST_POSTGRES_URI") or defaults.postgres_uri,
            redis_url=environ.get("CODEACTIONS_TEST_REDIS_URL") or defaults.redis_url,
            rabbitmq_url=environ.get("CODEACTIONS_TEST_RABBITMQ_URL") or defaults.rabbitmq_url,
            mongo_uri=environ.get(PREFIX + "MONGO_DB_URI") or "",
        )


@dataclass(frozen=True)
class ClientEnvironment:
    """What ``codeactions client`` takes from the environment (flags win over it)."""

    url: str = ""
    """``CODEACTIONS_URL``: the server, e.g. ``http://127.0.0.1:8050``."""
    token: str = ""
    """``CODEACTIONS_TOKEN``: sent as ``Authorization: Token <token>``."""
    config: str = ""
    """``CODEACTIONS_CONFIG``: the client's config file (default
    ``~/.config/codeactions/client.toml``)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ClientEnvironment:
        environ = os.environ if environ is None else environ
        home = environ.get("HOME") or str(Path.home())
        config_home = environ.get("XDG_CONFIG_HOME") or str(Path(home) / ".config")
        return cls(
            url=(environ.get("CODEACTIONS_URL") or "").strip(),
            token=(environ.get("CODEACTIONS_TOKEN") or "").strip(),
            config=environ.get("CODEACTIONS_CONFIG")
            or str(Path(config_home) / "codeactions" / "client.toml"),
        )


METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def export_metrics_dir(directory: str) -> None:
    """Tell prometheus-client, which reads only this variable, where shared metrics live."""
    os.environ[METRICS_DIR_VARIABLE] = directory


def inherited_environment() -> dict[str, str]:
    """This process's environment without any codeactions setting.

    The base for child processes that get their settings explicitly (test
    servers, tools); never used for user code, which gets no environment.
    """
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith((PREFIX, "FLOW_CODE_ACTIONS_", "CODEACTIONS_"))
        and name != METRICS_DIR_VARIABLE
    }
