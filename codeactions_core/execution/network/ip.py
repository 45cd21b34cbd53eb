"""The ``ip`` command (iproute2), run in the calling thread's network namespace."""

from __future__ import annotations

import subprocess

from codeactions_core.execution.network.errors import NetworkSetupError

SBIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
COMMAND_TIMEOUT = 20.0


class Ip:
    """Runs ``ip`` (found at ``path``); a failure raises NetworkSetupError with its stderr."""

    def __init__(self, path: str) -> None:
        self.path = path

    def run(self, args: list[str]) -> str:
        """One ``ip`` command; its output."""
        result = subprocess.run(
            [self.path, *args],
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if result.returncode != 0:
            raise NetworkSetupError(f"ip {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout

    def batch(self, commands: list[str], pass_fds: tuple[int, ...] = ()) -> None:
        """Run ``ip`` commands in the calling thread's network namespace."""
        result = subprocess.run(
            [self.path, "-batch", "-"],
            input="\n".join(commands) + "\n",
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            pass_fds=pass_fds,
            check=False,
        )
        if result.returncode != 0:
            raise NetworkSetupError(f"ip {'; '.join(commands)}: {result.stderr.strip()}")
