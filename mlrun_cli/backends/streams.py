"""What every backend does while a command runs: copy its output, mask secrets, take signals.

Output goes to the terminal as it comes and, chunk by chunk, into log files that survive a
kill. Ctrl-C, SIGTERM and SIGHUP are recorded by a `StopRequest`; the backend's wait loop
turns them into a stop of its own kind (a signal to the process group, `docker stop`, a job
cancellation); a second signal asks for the stop to be immediate.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class _Received:
    """What the signal handler records. A handler runs between two bytecodes of the main
    thread, possibly inside a lock the main thread holds or inside another handler (GNU
    `timeout` sends two signals): it only assigns plain attributes, so it can never block."""

    def __init__(self) -> None:
        self.signum: int | None = None  # the first signal received
        self.forced = False  # a second one arrived: stop now
        self.count = 0  # grows with every signal (a re-entered handler may lose a step)


class StopRequest:
    """Signal state shared between the signal handler and a backend's wait loop, which polls
    it (`take`, `wait`) rather than being woken: waking needs a lock, a lock can deadlock."""

    POLL_SECONDS = 0.02

    def __init__(self, received: _Received | None = None) -> None:
        self._received = received or _Received()
        self._acted_on = 0  # the count of signals when the wait loop last acted

    @property
    def signum(self) -> int | None:
        return self._received.signum

    @property
    def forced(self) -> bool:
        return self._received.forced

    def handle(self, signum: int, _frame: object) -> None:
        received = self._received
        if received.signum is None:
            received.signum = signum
        else:
            received.forced = True
        received.count += 1

    def sharing(self) -> StopRequest:
        """Another request fed by the same signals, with its own record of what it acted on
        (a sweep's children); one that starts after a signal sees it at once."""
        return StopRequest(self._received)

    def take(self, timeout: float) -> bool:
        """Whether a signal arrived (within `timeout`) that the wait loop has not acted on;
        from now on it counts as acted on."""
        if not self.wait(timeout):
            return False
        self._acted_on = self._received.count
        return True

    def wait(self, timeout: float) -> bool:
        """Whether a signal not yet acted on arrives within `timeout` (leaving it untaken)."""
        deadline = time.monotonic() + timeout
        while self._received.count == self._acted_on:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(self.POLL_SECONDS, remaining))
        return True


@contextlib.contextmanager
def handling_signals(stop: StopRequest) -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP go to `stop` for the block, then back to their owner.
    From a worker thread (an embedding host) the host keeps its own handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, stop.handle) for signum in FORWARDED_SIGNALS}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def start_pump(
    chunks: Iterable[bytes], log_path: Path, echo: IO[bytes] | None, redact: tuple[str, ...]
) -> threading.Thread:
    """Copy `chunks` into `log_path` (created now) and onto `echo`, in a thread of its own."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "wb")  # noqa: SIM115 - closed by the thread when the stream ends
    thread = threading.Thread(target=_pump, args=(chunks, log, echo, redact), daemon=True)
    thread.start()
    return thread


def _pump(
    chunks: Iterable[bytes], log: IO[bytes], echo: IO[bytes] | None, redact: tuple[str, ...]
) -> None:
    """The log is flushed after every chunk, so a kill of mlrun loses nothing written."""
    redactor = Redactor(redact)
    with log:
        for chunk in chunks:
            echo = _write(redactor.feed(chunk), log, echo)
        _write(redactor.flush(), log, echo)


def _write(data: bytes, log: IO[bytes], echo: IO[bytes] | None) -> IO[bytes] | None:
    if not data:
        return echo
    log.write(data)
    log.flush()
    return echo_chunk(echo, data)


def echo_chunk(echo: IO[bytes] | None, data: bytes) -> IO[bytes] | None:
    """Show output on the terminal; a terminal that went away stops the echo, not the run."""
    if echo is None:
        return None
    try:
        echo.write(data)
        echo.flush()
    except (BrokenPipeError, ValueError):
        return None
    return echo


class Redactor:
    """Replaces secret values in a byte stream, even when one is split across two chunks.

    Only an end of the output that could be the start of a secret is held back until the next
    chunk says whether it is one; everything else passes at once, so the entry point's last
    line shows live, and reaches the log before a `kill -9` of mlrun, even with secrets set.
    """

    MASK = b"***"

    def __init__(self, secrets: tuple[str, ...]) -> None:
        self.secrets = sorted({s.encode() for s in secrets if s}, key=len, reverse=True)
        self.hold = max((len(s) for s in self.secrets), default=1) - 1
        self.pending = b""

    def feed(self, chunk: bytes) -> bytes:
        data = self._mask(self.pending + chunk)
        held = self._secret_start_at_end(data)
        self.pending = data[len(data) - held :]
        return data[: len(data) - held]

    def _secret_start_at_end(self, data: bytes) -> int:
        """The length of the longest end of `data` that a secret starts with (0: none)."""
        for length in range(min(self.hold, len(data)), 0, -1):
            end = data[-length:]
            if any(secret.startswith(end) for secret in self.secrets):
                return length
        return 0

    def flush(self) -> bytes:
        data, self.pending = self.pending, b""
        return data

    def _mask(self, data: bytes) -> bytes:
        for secret in self.secrets:
            data = data.replace(secret, self.MASK)
        return data


def masked(text: str, secrets: tuple[str, ...]) -> str:
    """`text` with every secret replaced, as the streams are (for what an engine reports)."""
    redactor = Redactor(secrets)
    return (redactor.feed(text.encode()) + redactor.flush()).decode(errors="replace")
