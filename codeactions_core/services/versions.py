"""Reading a code's versions and comparing two of them (restoring one is CodeService's)."""

from __future__ import annotations

import difflib
from typing import Any

from codeactions_core.errors import InvalidInput
from codeactions_core.model import Code, CodeVersion
from codeactions_core.services.codes import CodeService, parse_version
from codeactions_core.store import CodeVersionRepository


class VersionService:
    def __init__(self, codes: CodeService, versions: CodeVersionRepository) -> None:
        self._codes = codes
        self._versions = versions

    def list(self, code: Code) -> list[CodeVersion]:
        """The code's versions, newest first."""
        return self._versions.list(code.id)

    def get(self, code: Code, number: Any) -> CodeVersion:
        return self._codes.version(code, number)

    def diff(self, code: Code, before: Any, after: Any) -> dict[str, Any]:
        """A unified diff of the sources of versions ``before`` and ``after`` (both required),
        with the language and timeout when they changed."""
        missing = [name for name, value in (("from", before), ("to", after)) if value in (None, "")]
        if missing:
            raise InvalidInput(
                f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} required: "
                "the version numbers to compare, e.g. ?from=1&to=2"
            )
        old = self._codes.version(code, parse_version(before))
        new = self._codes.version(code, parse_version(after))
        lines = difflib.unified_diff(
            old.source.splitlines(keepends=True),
            new.source.splitlines(keepends=True),
            fromfile=f"{code.id}@{old.number}",
            tofile=f"{code.id}@{new.number}",
        )
        changes = {
            name: {"from": getattr(old, name), "to": getattr(new, name)}
            for name in ("language", "timeout")
            if getattr(old, name) != getattr(new, name)
        }
        return {
            "code_id": code.id,
            "from": old.number,
            "to": new.number,
            "diff": "".join(
                line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
                for line in lines
            ),
            "changes": changes,
        }
