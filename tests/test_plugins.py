"""The plugin manager: third-party plugins win over built-ins, and can be disabled."""

from __future__ import annotations

import pytest

from codeactions_core import hookimpl
from codeactions_core.errors import ConfigurationError
from codeactions_core.execution.runtime import RuntimeHealth
from codeactions_core.plugins import describe_plugins, get_plugin_manager, load_settings
from codeactions_core.wiring import build_services, open_store


class FakeRuntime:
    def __init__(self, language: str, owner: str) -> None:
        self.language, self.owner = language, owner

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def health(self) -> RuntimeHealth:
        return RuntimeHealth(ready=True)

    def prepare(self, code) -> None: ...
    def execute(self, job):
        raise NotImplementedError


def test_builtins_are_loaded_with_versions(settings):
    infos = {info.name: info for info in describe_plugins(get_plugin_manager(settings))}
    assert infos["sql"].distribution == "codeactions-sql"
    assert infos["sql"].version and "codeactions_store" in infos["sql"].hooks
    assert "codeactions_step_runners" in infos["codeactions_core.default_plugins"].hooks


def test_a_third_party_store_wins_over_the_builtin(settings):
    sentinel = object()

    class ThirdParty:
        @hookimpl
        def codeactions_store(self, settings):
            return sentinel

    pm = get_plugin_manager(settings)
    pm.register(ThirdParty(), name="third-party")
    assert open_store(settings, pm) is sentinel


def test_a_third_party_log_store_wins_over_the_database(settings):
    class Logs:
        pass

    class ThirdParty:
        @hookimpl
        def codeactions_log_store(self, settings, store):
            return Logs()

    pm = get_plugin_manager(settings)
    pm.register(ThirdParty(), name="third-party")
    services = build_services(settings, pm)
    try:
        assert isinstance(services.log_store, Logs)
    finally:
        services.close()


def test_a_plugin_language_becomes_valid_and_first_runtime_wins(settings):
    class Builtin:
        @hookimpl(trylast=True)
        def codeactions_runtimes(self, settings):
            return [FakeRuntime("lua", "builtin")]

    class ThirdParty:
        @hookimpl
        def codeactions_runtimes(self, settings):
            return [FakeRuntime("lua", "third-party")]

    pm = get_plugin_manager(settings)
    pm.register(Builtin(), name="builtin")
    pm.register(ThirdParty(), name="third-party")
    services = build_services(settings, pm)
    try:
        assert services.runtimes["lua"].owner == "third-party"
        services.store.migrate()
        from codeactions_core.services.codes import CodeInput

        code = services.codes.create(
            CodeInput(name="n", type="flow", language="lua", project_uuid="P", source="x")
        )
        assert code.language == "lua"
    finally:
        services.close()


def test_disabled_plugins_are_not_loaded(settings):
    pm = get_plugin_manager(settings.replace(disable_plugins=("sql",)))
    assert "sql" not in {info.name for info in describe_plugins(pm)}
    with pytest.raises(ConfigurationError, match="no installed plugin provides a 'sqlite' store"):
        open_store(settings, pm)
    with pytest.raises(ConfigurationError, match="DB_TYPE: .*installed store types: mongodb \\("):
        load_settings(
            {"CODEACTIONS_DISABLE_PLUGINS": "sql", "FLOWS_CODE_ACTIONS_DB_TYPE": "sqlite"}
        )
