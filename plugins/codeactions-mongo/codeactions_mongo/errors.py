"""pymongo failures as the core's domain errors, with messages that name no secret."""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable
from typing import Any, TypeVar

from bson.errors import InvalidDocument
from pymongo.errors import BulkWriteError, ConnectionFailure, DuplicateKeyError, PyMongoError

from codeactions_core.errors import CodeActionsError, Conflict, InvalidInput, StoreError

T = TypeVar("T")

DUPLICATE_KEY = 11000
MAX_MESSAGE = 300
USER_INFO = re.compile(r"(?<=://)[^/@\s]+@")  # the user:password@ part of a URI
NOISE = re.compile(r" \(configured timeouts.*|, Timeout: .*")  # pymongo's topology dump


def safe_message(exc: BaseException, *secrets: str) -> str:
    """The first line of ``exc``, without URI credentials or any of ``secrets``, shortened."""
    message = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    for secret in secrets:
        if secret:
            message = message.replace(secret, "<hidden>")
    message = USER_INFO.sub("<hidden>@", message)
    return message[:MAX_MESSAGE]


def is_duplicate(exc: PyMongoError) -> bool:
    """A unique index refused the write (alone, or as the only failure of a batch)."""
    if isinstance(exc, DuplicateKeyError):
        return True
    if isinstance(exc, BulkWriteError):
        errors = exc.details.get("writeErrors") or []
        return bool(errors) and all(error.get("code") == DUPLICATE_KEY for error in errors)
    return False


def domain_error(exc: Exception) -> CodeActionsError:
    """The core error a pymongo or BSON failure stands for."""
    if isinstance(exc, PyMongoError) and is_duplicate(exc):
        return Conflict("conflicts with a stored document (a unique index refused it)")
    if isinstance(exc, ConnectionFailure):
        return StoreError(f"MongoDB is unreachable: {NOISE.sub('', safe_message(exc))}")
    if isinstance(exc, InvalidDocument):
        return InvalidInput(f"value rejected by MongoDB: {safe_message(exc)}")
    return StoreError(f"MongoDB failed: {safe_message(exc)}")


def translated(method: Callable[..., T]) -> Callable[..., T]:
    """Raise the domain error for any pymongo or BSON failure of ``method``."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return method(*args, **kwargs)
        except (PyMongoError, InvalidDocument) as exc:
            raise domain_error(exc) from exc

    return wrapper


def mongo_errors_as_store_errors(cls: type[T]) -> type[T]:
    """Apply :func:`translated` to every public method of ``cls``."""
    for name, member in list(vars(cls).items()):
        if inspect.isfunction(member) and not name.startswith("_"):
            setattr(cls, name, translated(member))
    return cls
