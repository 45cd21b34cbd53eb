"""Domain errors. The web layer maps each to one HTTP status; nothing else does."""

from __future__ import annotations


class CodeActionsError(Exception):
    """Base of every error a user may see; ``message`` is shown as is."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(CodeActionsError):
    """The request is malformed or a parameter is missing or invalid (400)."""


class LengthRequired(InvalidInput):
    """A request body whose end cannot be told (411)."""


class NotFound(CodeActionsError):
    """The named entity does not exist (404)."""


class Unauthenticated(CodeActionsError):
    """No valid credentials were presented (401)."""


class Forbidden(CodeActionsError):
    """The caller is known but may not do this (403)."""


class Conflict(CodeActionsError):
    """The request contradicts the stored state (409)."""


class Unavailable(CodeActionsError):
    """A dependency or capacity needed to serve the request is missing (503)."""


class StoreError(CodeActionsError):
    """The store failed; the message is safe to show and names no secret."""


class SchemaBehind(CodeActionsError):
    """The database schema is older than this code needs."""


class ConfigurationError(CodeActionsError):
    """A setting is invalid; the message names the variable."""


class TooManyRequests(CodeActionsError):
    """A rate limit refused the request (429); ``retry_after`` in seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
