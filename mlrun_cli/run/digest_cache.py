"""Digests of large input files, reused while the file is unchanged, as git's index does.

A file is taken as unchanged when its path, size, modification and change times (in
nanoseconds), inode and device are all the same as when it was hashed; rewriting a file, even
with its old modification time put back, changes its change time. Each digest is one small
file under the cache folder, named by a hash of those facts. Small files are hashed directly:
reading them costs less than looking them up. As in git, a file changed in the last seconds
is not cached: file times have a coarse clock, and a rewrite within the same tick would
otherwise go unnoticed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path

from mlrun_cli.core.caches import digest_cache_dir

MIN_CACHED_BYTES = 1 << 20
RACY_SECONDS = 2.0  # younger files are hashed every time


def cached_digest(path: Path, compute: Callable[[Path], tuple[str, int]]) -> tuple[str, int]:
    """(sha256, size) of the file at `path`: from the cache when unchanged, else `compute`."""
    try:
        facts = os.stat(path)
    except OSError:
        return compute(path)
    if facts.st_size < MIN_CACHED_BYTES:
        return compute(path)
    identity = (
        f"{os.path.realpath(path)}\0{facts.st_size}\0{facts.st_mtime_ns}\0"
        f"{facts.st_ctime_ns}\0{facts.st_ino}\0{facts.st_dev}"
    )
    entry = digest_cache_dir() / hashlib.sha256(identity.encode()).hexdigest()[:40]
    with contextlib.suppress(OSError, ValueError):
        stored_sha, stored_size = entry.read_text(encoding="ascii").split()
        return stored_sha, int(stored_size)
    sha, size = compute(path)
    if time.time_ns() - max(facts.st_mtime_ns, facts.st_ctime_ns) < RACY_SECONDS * 1e9:
        return sha, size
    with contextlib.suppress(OSError):  # a cache that cannot be written only costs time
        entry.parent.mkdir(parents=True, exist_ok=True)
        temporary = entry.with_name(f".{entry.name}.{os.getpid()}.tmp")
        temporary.write_text(f"{sha} {size}\n", encoding="ascii")
        os.replace(temporary, entry)
    return sha, size
