"""What the client prints: rich tables and text for people, one JSON document for scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from rich.console import Console


class Output:
    """Rich tables and text for people; one JSON document for scripts (``--json``)."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.console = Console(highlight=False, soft_wrap=True)
        self.errors = Console(stderr=True, highlight=False, soft_wrap=True)

    def emit(self, document: Any, human: Callable[[Console], None]) -> None:
        if self.as_json:
            sys.stdout.write(json.dumps(document, indent=2) + "\n")
            sys.stdout.flush()
        else:
            human(self.console)

    def error(self, message: str) -> None:
        if self.as_json:
            sys.stdout.write(json.dumps({"error": message}) + "\n")
        self.errors.print(f"[red]error:[/red] {message}", markup=True)
