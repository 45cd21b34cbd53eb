"""Creating, reading, updating and deleting codes, with every input rule."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from codeactions_core.errors import InvalidInput, NotFound
from codeactions_core.model import Code, CodeChanges, CodeType, NewCode, canonical_id
from codeactions_core.store import CodeRepository

if TYPE_CHECKING:
    from codeactions_core.libs.service import LibraryService
    from codeactions_core.services.runs import Runtimes

MAX_SOURCE_BYTES = 1024 * 1024  # a source of 1 MiB or more is refused
DEFAULT_TIMEOUT = 60
MIN_TIMEOUT, MAX_TIMEOUT = 5, 300
MAX_NAME = 255
MAX_URL = 512
BUILTIN_LANGUAGES = frozenset({"python", "javascript", "go"})


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
    ) -> None:
        self._codes = codes
        self._runtimes = runtimes
        self._blacklist = tuple(blacklist)
        self._libraries = libraries
        self._observer = observer

    def create(self, data: CodeInput) -> Code:
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
        self._install_libraries(new.language, new.source)
        code = self._recorded(self._prepared(self._codes.create(new)))
        self._saved(code, created=True)
        return code

    def find(self, code_id: str) -> Code | None:
        return self._codes.get(canonical_id(code_id))

    def get(self, code_id: str) -> Code:
        code = self._codes.get(canonical_id(code_id))
        if code is None:
            raise NotFound(f"code {code_id!r} not found")
        return code

    def list(self, project_uuid: str | None, code_type: str | None = None) -> list[Code]:
        if not project_uuid:
            raise InvalidInput("project_uuid is required")
        kind = parse_code_type(code_type) if code_type else None
        return self._codes.list_by_project(project_uuid, kind)

    def update(self, code_id: str, data: CodeInput) -> Code:
        """Change what ``data`` holds; an absent or empty source keeps the stored one."""
        stored = self.get(code_id)
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
        updated = self._codes.update(stored.id, changes)
        if updated is None:
            raise NotFound(f"code {code_id!r} not found")
        updated = self._prepared(updated)
        self._saved(updated, created=False)
        return self._recorded(updated) if program_changed else updated

    def check_kind(self, code_type: Any, language: Any) -> None:
        """Raise InvalidInput for a given type or language that is not valid."""
        if code_type not in (None, ""):
            parse_code_type(code_type)
        if language not in (None, ""):
            self._language(language)

    def delete(self, code_id: str) -> None:
        if not self._codes.delete(canonical_id(code_id)):
            raise NotFound(f"code {code_id!r} not found")

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
        known = set(BUILTIN_LANGUAGES) | set(self._runtimes.languages() if self._runtimes else ())
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
