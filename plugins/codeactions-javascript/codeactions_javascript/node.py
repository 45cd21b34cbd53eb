"""Finding the Node.js executable that runs the code, and what a run must see of it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass

from codeactions_core.errors import Unavailable
from codeactions_core.settings import PREFIX

PROBE_TIMEOUT = 30.0
WASM_BOUNDS_CHECKS = "--disable-wasm-trap-handler"
"""WebAssembly without its 10 GiB address-space reservations: undici (Node's fetch) runs on
WebAssembly, which cannot reserve them under the sandbox's address-space limit (Node >= 20.15)."""
PROBE = (
    "console.log(JSON.stringify([process.version, "
    f"process.allowedNodeEnvironmentFlags.has({WASM_BOUNDS_CHECKS!r})]))"
)


@dataclass(frozen=True)
class Node:
    executable: str
    """Absolute, symbolic links resolved: what the sandbox opens and execs."""
    version: str
    flags: tuple[str, ...] = ()
    """Options every run gets that this version knows."""

    @property
    def home(self) -> str:
        """The installation's directory (``<home>/bin/node``), or the executable's own:
        bound back, read-only, into the run's view if it sits in a hidden directory."""
        folder = os.path.dirname(self.executable)
        return os.path.dirname(folder) if os.path.basename(folder) == "bin" else folder


def find_node(binary: str) -> Node:
    """The Node.js ``binary`` names (a command on PATH or a path); Unavailable saying why not."""
    found = shutil.which(binary)
    if found is None:
        raise Unavailable(
            f"node not found: install Node.js or set {PREFIX}NODE_BINARY (looked for {binary!r})"
        )
    executable = os.path.realpath(found)
    try:
        answer = subprocess.run(
            [executable, "-e", PROBE],
            env={},
            cwd="/",
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise Unavailable(f"node at {executable} does not run: {exc}") from None
    try:
        version, bounds_checks = json.loads(answer.stdout)
    except (ValueError, TypeError):
        reason = f"exit status {answer.returncode}: {answer.stderr.strip()[-500:]}"
        raise Unavailable(f"node at {executable} does not run: {reason}") from None
    flags = (WASM_BOUNDS_CHECKS,) if bounds_checks else ()
    return Node(executable=executable, version=str(version), flags=flags)
