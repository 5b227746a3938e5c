"""File-system failures of the store (a folder not writable, a disk full) as StoreErrors.

The file store's writing methods are wrapped, so that a machine problem reaches the user as
one line naming the file and the reason, with exit code 4, never as a traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from mlrun_cli.errors import StoreError

P = ParamSpec("P")
R = TypeVar("R")


def store_io(action: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Turn an OSError raised while doing `action` into a StoreError that says where."""

    def decorate(method: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(method)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return method(*args, **kwargs)
            except OSError as exc:
                where = f" {exc.filename}" if exc.filename else ""
                reason = exc.strerror or str(exc)
                raise StoreError(f"tracking store: cannot {action}:{where} ({reason})") from None

        return wrapper

    return decorate
