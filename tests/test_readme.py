"""The README's examples, pasted as they are into one shell against a fresh server."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from codeactions_core.secret_box import new_key
from codeactions_core.testing.server import child_env, start_server

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[1] / "README.md"
MARKER = "<!-- readme-test -->"
BLOCK = re.compile(re.escape(MARKER) + r"\s*```sh\n(.*?)```", re.DOTALL)


def shell_blocks(text: str) -> list[str]:
    """Every ```sh block right after a ``<!-- readme-test -->`` line, in order."""
    return BLOCK.findall(text)


def test_every_marker_is_followed_by_a_shell_block():
    text = README.read_text()
    assert text.count(MARKER) == len(shell_blocks(text)) >= 4


def test_the_readme_examples_run_as_pasted(tmp_path, suite_env):
    missing = [tool for tool in ("bash", "curl", "jq") if shutil.which(tool) is None]
    if missing:
        message = (
            f"the README's examples need {', '.join(missing)} "
            f"(apt-get install -y {' '.join(missing)})"
        )
        if suite_env.require_services:
            pytest.fail(message)
        pytest.skip(message)
    server = start_server(
        {
            "FLOWS_CODE_ACTIONS_DATA_DIR": str(tmp_path / "data"),
            "FLOWS_CODE_ACTIONS_SECRETS_KEY": new_key(),
        },
        tmp_path,
    )
    try:
        work = tmp_path / "newcomer"
        work.mkdir()
        script = "set -euo pipefail\nset -x\n" + "\n".join(shell_blocks(README.read_text()))
        venv_bin = str(Path(sys.executable).parent)
        environment = child_env(
            {}, {"PORT": str(server.port), "HOME": str(tmp_path), "NO_COLOR": "1"}
        )
        environment["PATH"] = f"{venv_bin}:{environment.get('PATH', '')}"
        done = subprocess.run(
            ["bash", "-c", script],
            cwd=work,
            env=environment,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        shown = f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}\nserver:\n{server.log()[-3000:]}"
        assert done.returncode == 0, shown
        assert "sk_live_0123456789" not in done.stdout  # the secret's value never comes back out
        for expected in (
            '{"hi": "ana"}',
            "called by ana",
            '"status":"completed","result":{"greet":{"hi":"bob"}}',
            "called by bo",
            "completed",
            '"hi": "cy"',
            '{"token_length": 18}',
            "calling the API with ***",
            "/people/1",
            "id,name",
            '{"hello": "dee"}',
            '{"hi": "eve"}',
            "'Mars/Olympus' is not a known IANA time zone",
        ):
            assert expected in done.stdout, f"{expected!r} missing\n{shown}"
    finally:
        server.stop()
