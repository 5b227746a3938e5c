"""How an environment build looks: a spinner with elapsed time on a terminal, log lines in CI.

The spinner only runs while nothing else writes: it is stopped and its line erased before the
entry point starts, so it never mixes with the entry point's output.
"""

from __future__ import annotations

import logging
import sys
import threading
import time

_FRAMES = "|/-\\"
log = logging.getLogger("mlrun_cli")


class TerminalProgress:
    def __init__(self) -> None:
        self._tty = sys.stderr.isatty()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def building(self, message: str) -> None:
        if not self._tty:
            log.info("%s", message)
            return
        self.close()
        self._stop.clear()
        self._thread = threading.Thread(target=self._spin, args=(message,), daemon=True)
        self._thread.start()

    def built(self, message: str) -> None:
        self.close()
        log.info("%s", message)

    def close(self) -> None:
        """Stop the spinner and erase its line; safe to call at any time."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None
        sys.stderr.write("\r\033[K")
        sys.stderr.flush()

    def _spin(self, message: str) -> None:
        started = time.monotonic()
        frame = 0
        while not self._stop.wait(0.1):
            elapsed = time.monotonic() - started
            sys.stderr.write(f"\r{_FRAMES[frame % 4]} mlrun: {message} ({elapsed:.0f}s)\033[K")
            sys.stderr.flush()
            frame += 1
