"""Files replaced atomically: a reader sees the old or the new content, never a mix.

The store, the env cache and the outbox all rely on it, so it lives below all of them.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from pathlib import Path

# `.NAME.<pid>.<token>.tmp` (here and in mlrun_log), or `.NAME.<pid>.tmp` (caches): what readers
# of a folder skip. Any other name is the user's, dot-files included (`.hydra/`, a key `.seed`).
_TEMPORARY = re.compile(r"\..+\.[0-9]+(\.[0-9a-f]+)?\.tmp")


def is_temporary(name: str) -> bool:
    """Whether a file name is one of the temporary files atomic writes go through."""
    return _TEMPORARY.fullmatch(name) is not None


def write_atomic(path: Path, text: str, durable: bool = False) -> None:
    """Replace `path` so that a reader sees the old or the new content, never a mix.

    The temporary name is unique per call (not only per process): threads and processes that
    replace the same file at once each rename a complete file of their own, the last one wins.
    `durable` also syncs the data before the rename, so that even a machine crash leaves the
    old or the new file, not an empty one (meta.yaml, which every reader needs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary_name(path)
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def copy_atomic(source: Path, path: Path) -> None:
    """Copy `source` to `path` through a temporary file, as `write_atomic` does for text."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary_name(path)
    try:
        shutil.copyfile(source, temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _temporary_name(path: Path) -> Path:
    """A dot-file beside `path` (readers skip dot-files), unique across threads and processes."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp")
