"""Signals that end mlrun once its run exists: the run ends KILLED, never stays RUNNING.

While mlrun prepares a run (digests inputs, builds the env), Ctrl-C, SIGTERM and SIGHUP raise
`RunInterrupted` in the main thread, so the pipeline's cleanup marks the run KILLED, keeps
what it recorded, and mlrun exits with `interrupted_exit_code`. While the entry point runs,
the backend takes the signals over (it forwards them to the entry point) and gives them back
when the entry point has ended.

Around the writes that must be whole (creating the run with its runner tags, recording the
final status) signals are held: recorded, and raised only when the write is done (or dropped,
once the run is being finished anyway). A signal can thus never leave a run that nobody will
finish. Exit codes: 130 when asked to stop (Ctrl-C, SIGTERM), as for an interrupted run since
the first release; 129 (128 + SIGHUP) when the terminal hung up.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def interrupted_exit_code(signum: int) -> int:
    return 128 + signal.SIGHUP if signum == signal.SIGHUP else 128 + signal.SIGINT


def killed_exit_code(exc: KeyboardInterrupt) -> int:
    """The exit code a run stopped before its entry point ended records: 128 + the signal
    (a plain KeyboardInterrupt is Ctrl-C)."""
    return 128 + (exc.signum if isinstance(exc, RunInterrupted) else signal.SIGINT)


class RunInterrupted(KeyboardInterrupt):
    """A stop signal arrived while mlrun prepared the run; a KeyboardInterrupt for every
    handler that already treats Ctrl-C as "stop", with the signal and the exit code it means."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.exit_code = interrupted_exit_code(signum)


class SignalGuard:
    """Turns stop signals into `RunInterrupted`, or holds them while a write must be whole."""

    def __init__(self) -> None:
        self.holding = False
        self.pending: int | None = None  # a held signal

    def handle(self, signum: int, _frame: FrameType | None) -> None:
        """Raise once; the signals that follow (a storm, GNU `timeout`'s second one) are only
        recorded, so that none can break into the cleanup the first one started."""
        if self.holding:
            self.pending = self.pending or signum
            return
        self.holding = True
        raise RunInterrupted(signum)

    def hold(self) -> None:
        """From now on a signal is only recorded (the run is being created or finished)."""
        self.holding = True

    def release(self) -> None:
        """Signals raise again; one that arrived while held is raised now."""
        self.holding = False
        signum, self.pending = self.pending, None
        if signum is not None:
            raise RunInterrupted(signum)


@contextlib.contextmanager
def stop_signals_interrupt() -> Iterator[SignalGuard]:
    """Install the guard for the block, then give the signals back to their owner. From a
    worker thread (a sweep, an embedding host) nothing is installed: the host keeps them."""
    guard = SignalGuard()
    if threading.current_thread() is not threading.main_thread():
        yield guard
        return
    previous = {signum: signal.signal(signum, guard.handle) for signum in STOP_SIGNALS}
    try:
        yield guard
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
