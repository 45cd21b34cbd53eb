"""What a Go source declares, read without compiling it."""

from __future__ import annotations

import re

# Comments and literals, which may mention "func main(" without declaring it.
NOISE = re.compile(
    r"//[^\n]*"
    r"|/\*.*?\*/"
    r'|"(?:\\.|[^"\\\n])*"'
    r"|`[^`]*`"
    r"|'(?:\\.|[^'\\\n])*'",
    re.DOTALL,
)


def declares_function(source: str, name: str) -> bool:
    """Whether the source declares a top-level function ``name`` (methods do not count)."""
    code = NOISE.sub(" ", source)
    return re.search(rf"\bfunc\s+{re.escape(name)}\s*[(\[]", code) is not None


def is_program(source: str) -> bool:
    """A plain program: it has its own ``main()``, so it is built without the harness."""
    return declares_function(source, "main")
