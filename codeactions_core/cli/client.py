"""``codeactions client ...``: talk to a server (the commands live in
``codeactions_core.client.commands``)."""

from __future__ import annotations

import argparse

from codeactions_core.client.commands import client_command as run
from codeactions_core.client.commands import register_command

__all__ = ["register", "run"]


def register(commands: argparse._SubParsersAction) -> None:
    register_command(commands)  # sets handler=run
