"""The settings of codeactions-javascript, declared through the ``codeactions_settings`` hook."""

from __future__ import annotations

from dataclasses import dataclass

from codeactions_core.settings import PluginSettings, at_least, setting


@dataclass(frozen=True)
class NodeSettings(PluginSettings):
    """Settings of codeactions-javascript (the Node.js runtime):"""

    node_binary: str = setting("node", "Node.js executable of the JavaScript runtime.")
    node_warm_processes: int = setting(
        2,
        "Node.js processes each server process keeps started, waiting for a run.",
        parse=at_least(0),
    )
