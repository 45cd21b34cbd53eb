"""Every plugin is a real distribution; what the docs and CI promise matches the tree."""

from __future__ import annotations

import ast
import configparser
import tomllib
import zipfile
from pathlib import Path

import pytest

from codeactions_core.cli.settings import settings_table
from tests.support.wheels import build_alone

ROOT = Path(__file__).resolve().parents[1]
MIGRATIONS = ROOT / "plugins/codeactions-sql/codeactions_sql/migrations"
PLUGINS = sorted(
    path for path in (ROOT / "plugins").iterdir() if (path / "pyproject.toml").exists()
)


@pytest.mark.parametrize("plugin", PLUGINS, ids=lambda path: path.name)
def test_plugin_is_its_own_distribution(plugin):
    project = tomllib.loads((plugin / "pyproject.toml").read_text())["project"]
    assert project["name"] == plugin.name
    assert "codeactions-core" in project["dependencies"]
    assert project["entry-points"]["codeactions"], "registers under the `codeactions` group"
    assert "pytest>=8" in project["optional-dependencies"]["test"]
    assert any((plugin / "tests").glob("test_*.py")), "ships its own tests"


@pytest.mark.parametrize("plugin", PLUGINS, ids=lambda path: path.name)
def test_plugin_has_a_tox_env_and_is_in_the_full_env(plugin):
    tox = configparser.ConfigParser()
    tox.read(ROOT / "tox.ini")
    short = plugin.name.removeprefix("codeactions-")
    assert f"plugins/{plugin.name}" in tox[f"testenv:{short}"]["commands"]
    assert f"plugins/{plugin.name}[test]" in tox["testenv:full"]["deps"]


PUBLIC_CORE_API = {
    "codeactions_core",  # hookimpl
    "codeactions_core.auth",  # identities, for auth plugins
    "codeactions_core.errors",
    "codeactions_core.execution",  # the runtime contract and SandboxedRuntime, for language plugins
    "codeactions_core.flows.model",  # flow entities, for store plugins
    "codeactions_core.scheduling.model",  # schedule entities, for store plugins
    "codeactions_core.libs",  # the one libs directory, for the Python runtime
    "codeactions_core.model",
    "codeactions_core.settings",
    "codeactions_core.store",  # the repository protocols, for store plugins
    "codeactions_core.testing.server",  # real processes, for a plugin's own testing helpers
}
"""The core modules a plugin may import; the rest of the core may change under it."""


def core_imports(path: Path) -> set[str]:
    """The codeactions_core modules a source file imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found.update(name for name in names if name.split(".")[0] == "codeactions_core")
    return found


@pytest.mark.parametrize("plugin", PLUGINS, ids=lambda path: path.name)
def test_plugin_imports_only_the_public_core_api(plugin):
    package = next(
        path
        for path in plugin.iterdir()
        if path.name.startswith("codeactions_") and not path.name.endswith(".egg-info")
    )
    used = {
        module: str(path.relative_to(ROOT))
        for path in package.rglob("*.py")
        for module in core_imports(path)
    }
    assert {module: where for module, where in used.items() if module not in PUBLIC_CORE_API} == {}


def test_sql_wheel_ships_both_migration_sets(tmp_path):
    wheel = build_alone(ROOT / "plugins" / "codeactions-sql", tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    for source in MIGRATIONS.rglob("*.sql"):
        assert f"codeactions_sql/migrations/{source.relative_to(MIGRATIONS)}" in names


@pytest.mark.parametrize("language", ["python", "javascript", "go"])
def test_runtime_wheel_ships_its_engine(tmp_path, language):
    wheel = build_alone(ROOT / "plugins" / f"codeactions-{language}", tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    engine = ROOT / "plugins" / f"codeactions-{language}" / f"codeactions_{language}" / "engine"
    sources = [path for path in engine.iterdir() if path.suffix in (".py", ".js", ".go")]
    assert sources
    for source in sources:
        assert f"codeactions_{language}/engine/{source.name}" in names


def test_migrations_come_in_up_and_down_pairs_for_both_databases():
    for folder in (MIGRATIONS, MIGRATIONS / "sqlite"):
        ups = {p.name.removesuffix(".up.sql") for p in folder.glob("*.up.sql")}
        downs = {p.name.removesuffix(".down.sql") for p in folder.glob("*.down.sql")}
        assert ups == downs
    postgres = {p.name for p in MIGRATIONS.glob("*.up.sql")}
    assert postgres == {p.name for p in (MIGRATIONS / "sqlite").glob("*.up.sql")}


def test_plugins_hold_their_files_and_the_top_level_paths_point_at_them():
    """A plugin's distribution never depends on files outside its directory."""
    for plugin in PLUGINS:
        links = [path for path in plugin.rglob("*") if path.is_symlink()]
        assert links == [], f"{plugin.name} holds symlinks: {links}"
    assert (ROOT / "migrations").resolve() == MIGRATIONS
    for language in ("python", "javascript", "go"):
        engine = ROOT / "plugins" / f"codeactions-{language}" / f"codeactions_{language}" / "engine"
        assert (ROOT / "engines" / language).resolve() == engine


def test_readme_settings_table_is_current():
    assert settings_table() in (ROOT / "README.md").read_text()


def test_ci_script_installs_go_starts_services_and_runs_make_test():
    script = (ROOT / ".ci" / "run").read_text()
    assert "golang-go" in script and "CODEACTIONS_REQUIRE_SERVICES=1" in script
    assert "\nmake test\n" in script  # then: nothing left behind by the suite
    for name in ("nftables", "iproute2", "libseccomp2", "ip netns list", "nft list tables"):
        assert name in script
    for service in ("pg_ctlcluster", "redis-server", "rabbitmq-server"):
        assert service in script


def test_dockerfile_installs_every_plugin_and_runs_the_cli():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "./plugins/*" in dockerfile
    assert 'ENTRYPOINT ["codeactions"]' in dockerfile
    assert "FROM python:3.12" in dockerfile  # the old image's Python, for the server and user code
    assert "COPY engines" not in dockerfile and "COPY migrations" not in dockerfile
    assert "codeactions libs install --preset legacy" in dockerfile


def test_license_matches_every_distribution():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License")
    for pyproject in [ROOT / "pyproject.toml", *(plugin / "pyproject.toml" for plugin in PLUGINS)]:
        assert tomllib.loads(pyproject.read_text())["project"]["license"] == {"text": "MIT"}, (
            pyproject
        )


def test_the_documents_the_readme_points_to_are_in_the_repository():
    readme = (ROOT / "README.md").read_text()
    for target in ("docs/ENGINE_API.md", "docs/MIGRATING.md"):
        assert f"]({target})" in readme and (ROOT / target).is_file(), target
    engine_api = (ROOT / "docs/ENGINE_API.md").read_text()
    for fence, entry in (
        ("```python", "def Run(engine)"),
        ("```js", "exports.Run"),
        ("```go", "func Run(engine *Engine)"),
    ):
        assert fence in engine_api and entry in engine_api


def test_migrating_lists_every_decided_difference():
    migrating = (ROOT / "docs/MIGRATING.md").read_text()
    for step in (
        "codeactions migrate --libs",
        "codeactions libs sync",
        "DB_URI",
        "codeactions scheduler",
    ):
        assert step in migrating, step
    rows = [
        line
        for line in migrating.splitlines()
        if line.startswith("| ") and not line.startswith("| What")
    ]
    table = "\n".join(rows)
    for difference in (
        "exception escaping `Run`",
        "Integer `status_code`",
        "`AUTH_TOKEN`",
        "403",
        "`timeout` on create",
        "standard error",
        "standard output",
    ):
        assert difference in table, difference
    assert all(len(row.split(" | ")) == 4 for row in rows), "every row: what, old, here, why"
