"""Several runs echoing to one terminal at once: each line starts with its run's short name.

Only the echo is prefixed; each run's own logs receive its output untouched. Lines are written
whole under one lock, so two runs never interleave inside a line.
"""

from __future__ import annotations

import threading
from typing import IO, cast

from mlrun_cli.backends.streams import echo_chunk


class PrefixedLines:
    """A byte sink with `write` and `flush` (all a backend's echo uses), line by line."""

    def __init__(self, target: IO[bytes], prefix: str, lock: threading.Lock) -> None:
        self.target: IO[bytes] | None = target
        self.prefix = prefix.encode()
        self.lock = lock
        self.partial = b""

    def write(self, data: bytes) -> int:
        *lines, self.partial = (self.partial + data).split(b"\n")
        if lines:
            self._emit(b"".join(self.prefix + line + b"\n" for line in lines))
        return len(data)

    def flush(self) -> None:
        """Whole lines are written as they come; a partial line waits for its end."""

    def finish(self) -> None:
        """The run ended: show what is left of its last line."""
        if self.partial:
            self._emit(self.prefix + self.partial + b"\n")
            self.partial = b""

    def as_stream(self) -> IO[bytes]:
        return cast(IO[bytes], self)  # a backend's echo only calls write() and flush()

    def _emit(self, data: bytes) -> None:
        with self.lock:
            self.target = echo_chunk(self.target, data)
