"""Creating, reading, updating and deleting codes, with every input rule."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from codeactions_core.errors import InvalidInput, NotFound
from codeactions_core.model import (
    DEFAULT_TIMEOUT,
    LEGACY_LANGUAGES,
    MAX_TIMEOUT,
    MIN_TIMEOUT,
    Code,
    CodeChanges,
    CodeType,
    CodeVersion,
    NewCode,
    NewCodeVersion,
    canonical_id,
)
from codeactions_core.scheduling.model import TargetType
from codeactions_core.scheduling.store import ScheduleRepository
from codeactions_core.store import CodeRepository, CodeVersionRepository

if TYPE_CHECKING:
    from codeactions_core.execution.runtimes import Runtimes
    from codeactions_core.libs.service import LibraryService

MAX_SOURCE_BYTES = 1024 * 1024  # a source of 1 MiB or more is refused
MAX_NAME = 255
MAX_URL = 512
MAX_NOTE = 1000


@dataclass
class CodeInput:
    """Code fields as a client sent them (query string or JSON); ``None`` = absent."""

    name: Any = None
    type: Any = None
    language: Any = None
    project_uuid: Any = None
    source: Any = None
    timeout: Any = None
    url: Any = None
    note: Any = None
    """Why: kept on the version a change of source, language or timeout creates."""


def parse_timeout(raw: Any) -> int:
    """Seconds: absent or 0 → 60, clamped into [5, 300]; anything but an integer → error."""
    if raw is None or raw == "":
        return DEFAULT_TIMEOUT
    if isinstance(raw, bool) or not isinstance(raw, (int, str)):
        raise InvalidInput(f"timeout must be an integer number of seconds, got {raw!r}")
    try:
        seconds = int(raw)
    except ValueError:
        raise InvalidInput(f"timeout must be an integer number of seconds, got {raw!r}") from None
    if seconds == 0:
        return DEFAULT_TIMEOUT
    return min(max(seconds, MIN_TIMEOUT), MAX_TIMEOUT)


def parse_version(raw: Any) -> int:
    """A version number (a positive integer); InvalidInput naming the value otherwise."""
    if isinstance(raw, bool) or not isinstance(raw, (int, str)):
        raise InvalidInput(f"version must be a positive integer, got {raw!r}")
    try:
        number = int(raw)
    except ValueError:
        raise InvalidInput(f"version must be a positive integer, got {raw!r}") from None
    if number < 1 or number > 2**31 - 1:
        raise InvalidInput(f"version must be a positive integer, got {raw!r}")
    return number


def parse_code_type(raw: Any) -> CodeType:
    try:
        return CodeType(raw)
    except ValueError:
        raise InvalidInput(
            f"type {raw!r} is not valid; use one of: {', '.join(t.value for t in CodeType)}"
        ) from None


class CodeObserver(Protocol):
    """Told about every saved code (metrics)."""

    def code_saved(self, project_uuid: str, code_id: str, *, created: bool) -> None: ...


class CodeService:
    """The code use cases. With ``runtimes``, a code is only accepted in a language
    that can run here, and each saved code is handed to its runtime to prepare.
    With ``libraries``, a Python code's libraries are installed (AUTO_INSTALL_LIBS)
    before it is saved, and recorded once it is."""

    def __init__(
        self,
        codes: CodeRepository,
        *,
        runtimes: Runtimes | None = None,
        blacklist: Iterable[str] = (),
        libraries: LibraryService | None = None,
        observer: CodeObserver | None = None,
        versions: CodeVersionRepository | None = None,
        schedules: ScheduleRepository | None = None,
    ) -> None:
        self._codes = codes
        self._versions = versions
        self._schedules = schedules
        self._runtimes = runtimes
        self._blacklist = tuple(blacklist)
        self._libraries = libraries
        self._observer = observer

    def create(self, data: CodeInput, author: str = "") -> Code:
        new = NewCode(
            name=self._text(data.name, "name", MAX_NAME, required=True),
            type=parse_code_type(self._text(data.type, "type", 50, required=True)),
            language=self._language(self._text(data.language, "language", 50, required=True)),
            project_uuid=self._text(data.project_uuid, "project_uuid", MAX_NAME, required=True),
            source=self._source(data.source if data.source is not None else ""),
            timeout=parse_timeout(data.timeout),
            url=self._text(data.url, "url", MAX_URL) or "",
        )
        self._require_runtime(new.language)
        note = self._text(data.note, "note", MAX_NOTE) or ""
        self._install_libraries(new.language, new.source)
        code = self._codes.create(new)
        if self._versions is not None:
            first = self._versions.commit(code.id, self._draft(code, author, note))
            code.version = first.number if first else None
        code = self._recorded(self._prepared(code))
        self._saved(code, created=True)
        return code

    def find(self, code_id: str) -> Code | None:
        return self._versioned(self._codes.get(canonical_id(code_id)))

    def get(self, code_id: str) -> Code:
        code = self.find(code_id)
        if code is None:
            raise NotFound(f"code {code_id!r} not found")
        return code

    def at_version(self, code: Code, number: Any) -> Code:
        """``code`` with the program of its version ``number`` (a run pinned to it)."""
        version = self.version(code, number)
        return dataclasses.replace(
            code,
            source=version.source,
            language=version.language,
            timeout=version.timeout,
            version=version.number,
        )

    def version(self, code: Code, number: Any) -> CodeVersion:
        """Version ``number`` of ``code``: InvalidInput when not a number, NotFound when unknown."""
        wanted = parse_version(number)
        found = self._versions.get(code.id, wanted) if self._versions is not None else None
        if found is None:
            raise NotFound(f"code {code.id!r} has no version {wanted}")
        return found

    def restore(self, code_id: str, number: Any, author: str = "", note: Any = None) -> Code:
        """A new version with the program of version ``number``; the code as it is now."""
        code = self.get(code_id)
        version = self.version(code, number)
        note = self._text(note, "note", MAX_NOTE) or f"restored version {version.number}"
        self._require_runtime(version.language)
        self._install_libraries(version.language, version.source)
        restored = dataclasses.replace(
            code, source=version.source, language=version.language, timeout=version.timeout
        )
        committed = self._versions.commit(code.id, self._draft(restored, author, note))
        if committed is None:
            raise NotFound(f"code {code_id!r} not found")
        restored.version = committed.number
        restored.updated_at = committed.created_at
        restored = self._recorded(self._prepared(restored))
        self._saved(restored, created=False)
        return restored

    def list(self, project_uuid: str | None, code_type: str | None = None) -> list[Code]:
        if not project_uuid:
            raise InvalidInput("project_uuid is required")
        kind = parse_code_type(code_type) if code_type else None
        return self._codes.list_by_project(project_uuid, kind)

    def update(self, code: Code | str, data: CodeInput, author: str = "") -> Code:
        """Change what ``data`` holds; an absent or empty source keeps the stored one. A
        change of source, language or timeout is a new version (the code's ``version``).
        ``code``: the code as the caller read it (to check access: one read), or its id."""
        stored = code if isinstance(code, Code) else self.get(code)
        changes = CodeChanges(
            name=self._text(data.name, "name", MAX_NAME),
            type=parse_code_type(data.type) if data.type not in (None, "") else None,
            language=self._language(data.language) if data.language not in (None, "") else None,
            source=self._source(data.source) if data.source not in (None, "") else None,
            timeout=parse_timeout(data.timeout) if data.timeout not in (None, "") else None,
            url=self._text(data.url, "url", MAX_URL),
        )
        if changes.language not in (None, stored.language):
            self._require_runtime(changes.language)
        language = changes.language or stored.language
        program_changed = changes.source is not None or language != stored.language
        if program_changed:
            self._install_libraries(language, changes.source or stored.source)
        note = self._text(data.note, "note", MAX_NOTE) or ""
        updated = self._store_update(stored, changes, author, note)
        updated = self._prepared(updated)
        self._saved(updated, created=False)
        return self._recorded(updated) if program_changed else updated

    def check_kind(self, code_type: Any, language: Any) -> None:
        """Raise InvalidInput for a given type or language that is not valid."""
        if code_type not in (None, ""):
            parse_code_type(code_type)
        if language not in (None, ""):
            self._language(language)

    def delete(self, code: Code | str) -> None:
        """Delete ``code`` (as the caller read it to check access: one read; or its id), its
        versions and its schedules."""
        code_id = code.id if isinstance(code, Code) else code
        if not isinstance(code, Code):
            code = self._codes.get(canonical_id(code_id))
        if code is None or not self._codes.delete(code.id):
            raise NotFound(f"code {code_id!r} not found")
        if self._versions is not None:
            self._versions.delete_for_code(code.id)
        if self._schedules is not None:
            self._schedules.delete_for_target(TargetType.CODE, code.id)

    def _store_update(self, stored: Code, changes: CodeChanges, author: str, note: str) -> Code:
        """Write ``changes``: a new version (code and version in one step) when the program
        (source, language, timeout) changes, a plain update for the other fields."""
        merged = changes.apply(stored)
        program = (merged.source, merged.language, merged.timeout)
        if self._versions is None or program == (stored.source, stored.language, stored.timeout):
            updated = self._codes.update(stored.id, changes)
            if updated is None:
                raise NotFound(f"code {stored.id!r} not found")
            updated.version = updated.version or stored.version
            return updated
        others = dataclasses.replace(changes, source=None, language=None, timeout=None)
        if others != CodeChanges() and self._codes.update(stored.id, others) is None:
            raise NotFound(f"code {stored.id!r} not found")
        committed = self._versions.commit(stored.id, self._draft(merged, author, note))
        if committed is None:
            raise NotFound(f"code {stored.id!r} not found")
        merged.version, merged.updated_at = committed.number, committed.created_at
        return merged

    def _versioned(self, code: Code | None) -> Code | None:
        """A code stored before versions gets its version 1 on first read."""
        if code is None or code.version is not None or self._versions is None:
            return code
        draft = self._draft(code, "", "stored before versions")
        first = self._versions.ensure_first(code.id, draft)
        code.version = first.number if first else None
        return code

    @staticmethod
    def _draft(code: Code, author: str, note: str) -> NewCodeVersion:
        return NewCodeVersion(
            source=code.source,
            language=code.language,
            timeout=code.timeout,
            author=author,
            note=note,
        )

    @staticmethod
    def _text(raw: Any, field: str, limit: int, *, required: bool = False) -> str | None:
        if raw is None or raw == "":
            if required:
                raise InvalidInput(f"{field} is required")
            return None
        if not isinstance(raw, str):
            raise InvalidInput(f"{field} must be a string, got {type(raw).__name__}")
        if "\x00" in raw:
            raise InvalidInput(f"{field} contains a NUL character")
        text = raw.strip()
        if required and not text:
            raise InvalidInput(f"{field} is required")
        if len(text) > limit:
            raise InvalidInput(f"{field} is longer than {limit} characters")
        return text

    def _require_runtime(self, language: str) -> None:
        if self._runtimes is not None:
            self._runtimes.ready(language)

    def _saved(self, code: Code, *, created: bool) -> None:
        if self._observer is not None:
            self._observer.code_saved(code.project_uuid, code.id, created=created)

    def _install_libraries(self, language: str, source: str) -> None:
        """Before saving: install what the code imports (AUTO_INSTALL_LIBS); InvalidInput if not."""
        if self._libraries is not None:
            self._libraries.prepare(language, source)

    def _recorded(self, code: Code) -> Code:
        if self._libraries is not None:
            self._libraries.record_quietly(code)
        return code

    def _prepared(self, code: Code) -> Code:
        if self._runtimes is not None and code.language in self._runtimes.languages():
            self._runtimes[code.language].prepare(code)
        return code

    def _language(self, raw: Any) -> str:
        known = set(LEGACY_LANGUAGES) | set(self._runtimes.languages() if self._runtimes else ())
        if raw not in known:
            raise InvalidInput(
                f"language {raw!r} is not valid; use one of: {', '.join(sorted(known))}"
            )
        return raw

    def _source(self, raw: Any) -> str:
        if not isinstance(raw, str):
            raise InvalidInput(f"source must be a string, got {type(raw).__name__}")
        size = len(raw.encode("utf-8"))
        if size >= MAX_SOURCE_BYTES:
            raise InvalidInput(
                f"source is {size} bytes; it must be smaller than {MAX_SOURCE_BYTES} bytes (1 MiB)"
            )
        if "\x00" in raw:
            raise InvalidInput("source contains a NUL character")
        for term in self._blacklist:
            if term in raw:
                raise InvalidInput(f"source contains the forbidden term {term!r}")
        return raw
