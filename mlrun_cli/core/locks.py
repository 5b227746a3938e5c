"""One exclusive lock per file, across processes (fcntl), for builds, clones and names.

A holder may delete the lock file before it releases it (to leave no empty files behind):
whoever was waiting on that file then finds it gone and locks the path's new file instead,
so two processes never both believe they hold the lock.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


@contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Held until the block ends; released by the kernel even if the process dies."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = _lock_current_file(path)
    try:
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def _lock_current_file(path: Path) -> IO[str]:
    while True:
        handle = open(path, "a")  # noqa: SIM115  # closed here on retry, else by the caller
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            if os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino:
                return handle
        except FileNotFoundError:
            pass
        handle.close()  # the holder we waited for removed this file: lock the path's new one
