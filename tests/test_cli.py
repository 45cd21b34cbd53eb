"""The ``codeactions`` command: migrate, settings, plugins, and start-up refusals."""

from __future__ import annotations

import pytest
from codeactions_sql.migrator import migrations_for

from codeactions_core.testing.server import run_cli

LATEST = migrations_for("sqlite")[-1].version
PG_LATEST = migrations_for("postgres")[-1].version


def versions(dialect: str, after: int = 0) -> str:
    """The shipped migrations' versions above ``after``, as `migrate` lists them (numbers may
    have gaps: each part of the work has its own)."""
    return ", ".join(str(m.version) for m in migrations_for(dialect) if m.version > after)


def latest(dialect: str) -> int:
    return migrations_for(dialect)[-1].version


def sqlite(tmp_path) -> dict[str, str]:
    return {"FLOWS_CODE_ACTIONS_DATA_DIR": str(tmp_path / "data")}


def test_migrate_then_status(tmp_path):
    first = run_cli("migrate", settings=sqlite(tmp_path))
    assert first.returncode == 0, first.stderr
    assert f"applied {versions('sqlite')}" in first.stdout
    again = run_cli("migrate", settings=sqlite(tmp_path))
    assert "nothing to apply" in again.stdout
    status = run_cli("migrate", "--status", settings=sqlite(tmp_path))
    assert f"sqlite schema at version {LATEST}; latest is {LATEST}" in status.stdout
    assert (tmp_path / "data" / "codeactions.db").exists()


def test_migrate_to_a_version(tmp_path):
    result = run_cli("migrate", "--to", "3", settings=sqlite(tmp_path))
    assert "applied 1, 2, 3" in result.stdout and "version 3" in result.stdout


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("FLOWS_CODE_ACTIONS_PORT", "http"),
        ("FLOWS_CODE_ACTIONS_WORKER_POOL_SIZE", "-2"),
        ("FLOWS_CODE_ACTIONS_DB_TYPE", "excel"),
    ],
)
@pytest.mark.parametrize("command", ["serve", "migrate"])
def test_bad_setting_stops_the_process_naming_the_variable(tmp_path, command, variable, value):
    result = run_cli(command, settings={**sqlite(tmp_path), variable: value}, timeout=30)
    assert result.returncode == 2
    assert variable in result.stderr


def test_settings_hides_secrets(tmp_path):
    result = run_cli(
        "settings",
        settings={
            **sqlite(tmp_path),
            "FLOWS_CODE_ACTIONS_AUTH_TOKEN": "very-secret",
            "FLOWS_CODE_ACTIONS_PORT": "9001",
        },
    )
    assert "FLOWS_CODE_ACTIONS_PORT=9001" in result.stdout
    assert "FLOWS_CODE_ACTIONS_AUTH_TOKEN=<set>" in result.stdout
    assert "very-secret" not in result.stdout


def test_plugins_lists_builtins(tmp_path):
    result = run_cli("plugins", settings=sqlite(tmp_path))
    assert result.returncode == 0
    assert "codeactions-sql" in result.stdout


@pytest.mark.postgres
class TestPostgresSchemaGate:
    def settings(self, uri: str) -> dict[str, str]:
        return {"FLOWS_CODE_ACTIONS_DB_TYPE": "postgres", "FLOWS_CODE_ACTIONS_DB_URI": uri}

    def test_serve_refuses_a_database_that_is_behind(self, new_postgres_database):
        uri = new_postgres_database()
        assert run_cli("migrate", "--to", "5", settings=self.settings(uri)).returncode == 0
        refused = run_cli(
            "serve", settings={**self.settings(uri), "FLOWS_CODE_ACTIONS_PORT": "1"}, timeout=30
        )
        assert refused.returncode == 2
        assert "version 5" in refused.stderr and "codeactions migrate" in refused.stderr

    def test_migrate_creates_a_missing_database(self, new_postgres_database):
        uri = new_postgres_database() + "_absent"
        settings = self.settings(uri)
        refused = run_cli("serve", settings=settings, timeout=30)
        assert (
            refused.returncode == 2
            and "does not exist" in refused.stderr
            and "codeactions migrate" in refused.stderr
        )
        created = run_cli("migrate", settings=settings)
        assert created.returncode == 0, created.stderr
        assert f"postgres schema at version {PG_LATEST}" in created.stdout
        import psycopg2

        connection = psycopg2.connect(uri.rsplit("/", 1)[0] + "/postgres")
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE "{uri.rsplit("/", 1)[1]}" WITH (FORCE)')
        connection.close()

    def test_dirty_schema_is_refused_until_forced(self, new_postgres_database):
        uri = new_postgres_database()
        settings = self.settings(uri)
        run_cli("migrate", "--to", "6", settings=settings)
        import psycopg2

        connection = psycopg2.connect(uri)
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("UPDATE schema_migrations SET dirty = true")
        connection.close()
        refused = run_cli("migrate", settings=settings)
        assert (
            refused.returncode == 2 and "dirty" in refused.stderr and "--force 6" in refused.stderr
        )
        assert run_cli("serve", settings=settings, timeout=30).returncode == 2
        forced = run_cli("migrate", "--force", "6", settings=settings)
        assert forced.returncode == 0 and "version 6" in forced.stdout
        assert "applied 7" in run_cli("migrate", settings=settings).stdout
