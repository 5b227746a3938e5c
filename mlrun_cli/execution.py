"""The one place that starts processes: spawn, stream, capture, forward signals, report.

The child runs in its own process group so that Ctrl-C reaches it exactly once (forwarded by
us) and so that everything it started can be stopped together. Its output goes to the
terminal as it comes and, chunk by chunk, into log files that survive a kill.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from mlrun_cli.errors import LaunchError

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_CHUNK = 65536


@dataclass(frozen=True)
class CommandRequest:
    argv: tuple[str, ...]
    cwd: Path
    env: Mapping[str, str]
    stdout_log: Path
    stderr_log: Path
    echo_stdout: IO[bytes] | None = None
    echo_stderr: IO[bytes] | None = None
    grace_seconds: float = 10.0  # between the forwarded signal and SIGKILL
    redact: tuple[str, ...] = ()  # secret values replaced by *** in the logs and the echo


@dataclass(frozen=True)
class CommandOutcome:
    returncode: int  # shell convention: 128+N when signal N ended the child
    started: float
    ended: float
    killed_by: int | None = None  # the signal that ended the child, if one did
    interrupted_by: int | None = None  # the signal mlrun received and forwarded

    @property
    def duration(self) -> float:
        return self.ended - self.started


@dataclass
class _Interruption:
    """Signal state shared between the handler and the wait loop."""

    pgid: int
    grace: float
    signum: int | None = None
    kill_at: float | None = None

    def handle(self, signum: int, _frame: object) -> None:
        if self.signum is None:
            self.signum = signum
            self.kill_at = time.monotonic() + self.grace
            _signal_group(self.pgid, signum)
        else:
            _signal_group(self.pgid, signal.SIGKILL)  # asked twice: stop now


@contextlib.contextmanager
def handling_signals(handler: Callable[[int, Any], None]) -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP go to `handler` for the block, then back to their owner.
    From a worker thread (an embedding host) the host keeps its own handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, handler) for signum in FORWARDED_SIGNALS}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def run_command(request: CommandRequest) -> CommandOutcome:
    """Run `request.argv` to completion (or interruption) and say how it ended."""
    for log_path in (request.stdout_log, request.stderr_log):
        log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(request.stdout_log, "wb") as out_log, open(request.stderr_log, "wb") as err_log:
        started = time.time()
        process = _spawn(request)
        interruption = _Interruption(pgid=process.pid, grace=request.grace_seconds)
        with handling_signals(interruption.handle):
            pumps = [
                _start_pump(process.stdout, out_log, request.echo_stdout, request.redact),
                _start_pump(process.stderr, err_log, request.echo_stderr, request.redact),
            ]
            returncode = _wait(process, interruption)
            for pump in pumps:
                pump.join(timeout=5.0)  # a detached grandchild may keep a pipe open
        ended = time.time()
    killed_by = -returncode if returncode < 0 else None
    return CommandOutcome(
        returncode=128 + killed_by if killed_by else returncode,
        started=started,
        ended=ended,
        killed_by=killed_by,
        interrupted_by=interruption.signum,
    )


def _spawn(request: CommandRequest) -> subprocess.Popen[bytes]:
    group: dict[str, Any] = (
        {"process_group": 0} if sys.version_info >= (3, 11) else {"preexec_fn": os.setpgrp}
    )
    # A background process group that reads the terminal would be stopped (SIGTTIN).
    stdin = subprocess.DEVNULL if _stdin_is_terminal() else None
    try:
        return subprocess.Popen(
            list(request.argv),
            cwd=request.cwd,
            env=dict(request.env),
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            close_fds=True,
            **group,
        )
    except OSError as exc:
        raise LaunchError(f"cannot start {request.argv[0]!r}: {exc.strerror}") from None


def _stdin_is_terminal() -> bool:
    try:
        return os.isatty(sys.stdin.fileno())
    except (AttributeError, OSError, ValueError):
        return False


def _wait(process: subprocess.Popen[bytes], interruption: _Interruption) -> int:
    while True:
        try:
            return process.wait(timeout=0.1)
        except subprocess.TimeoutExpired:
            if interruption.kill_at is not None and time.monotonic() >= interruption.kill_at:
                _signal_group(interruption.pgid, signal.SIGKILL)
                interruption.kill_at = None


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # the group may already be gone
        os.killpg(pgid, signum)


def _start_pump(
    source: IO[bytes] | None, log: IO[bytes], echo: IO[bytes] | None, redact: tuple[str, ...]
) -> threading.Thread:
    thread = threading.Thread(target=_pump, args=(source, log, echo, redact), daemon=True)
    thread.start()
    return thread


def _pump(
    source: IO[bytes] | None, log: IO[bytes], echo: IO[bytes] | None, redact: tuple[str, ...]
) -> None:
    """Copy chunks as they arrive; the log is flushed each time so a kill loses nothing."""
    if source is None:
        return
    redactor = Redactor(redact)
    fd = source.fileno()
    while True:
        chunk = os.read(fd, _CHUNK)
        data = redactor.feed(chunk) if chunk else redactor.flush()
        if data:
            log.write(data)
            log.flush()
            echo = echo_chunk(echo, data)
        if not chunk:
            break
    source.close()


def echo_chunk(echo: IO[bytes] | None, data: bytes) -> IO[bytes] | None:
    """Show output on the terminal; a terminal that went away stops the echo, not the run."""

    if echo is None:
        return None
    try:
        echo.write(data)
        echo.flush()
    except (BrokenPipeError, ValueError):
        return None  # the terminal went away; keep logging
    return echo


class Redactor:
    """Replaces secret values in a byte stream, even when one is split across two chunks.

    The last len(longest secret) - 1 bytes are held back until the next chunk shows whether
    they start a secret; without secrets nothing is held back.
    """

    MASK = b"***"

    def __init__(self, secrets: tuple[str, ...]) -> None:
        self.secrets = sorted({s.encode() for s in secrets if s}, key=len, reverse=True)
        self.hold = max((len(s) for s in self.secrets), default=1) - 1
        self.pending = b""

    def feed(self, chunk: bytes) -> bytes:
        data = self._mask(self.pending + chunk)
        if self.hold == 0:
            self.pending = b""
            return data
        self.pending = data[-self.hold :]
        return data[: -self.hold]

    def flush(self) -> bytes:
        data, self.pending = self.pending, b""
        return data

    def _mask(self, data: bytes) -> bytes:
        for secret in self.secrets:
            data = data.replace(secret, self.MASK)
        return data


@dataclass(frozen=True)
class CapturedOutcome:
    returncode: int
    stdout: str
    stderr: str


def run_captured(
    argv: tuple[str, ...], env: Mapping[str, str] | None = None, timeout: float = 60.0
) -> CapturedOutcome:
    """A short helper command (a version query, a build step) whose output we keep."""
    try:
        done = subprocess.run(
            list(argv),
            env=None if env is None else dict(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LaunchError(f"cannot run {argv[0]!r}: {exc}") from None
    return CapturedOutcome(done.returncode, done.stdout, done.stderr)


def run_logged(
    argv: tuple[str, ...],
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> int:
    """A build step: its output is appended to `log_path`, never shown on the terminal."""
    with open(log_path, "ab") as log:
        log.write(f"$ {' '.join(argv)}\n".encode())
        log.flush()
        try:
            done = subprocess.run(
                list(argv),
                env=None if env is None else dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        except OSError as exc:
            raise LaunchError(f"cannot run {argv[0]!r}: {exc.strerror}") from None
    return done.returncode


def replace_process(argv: tuple[str, ...], env: Mapping[str, str]) -> None:
    """Become `argv` (for long-running servers: signals then reach them directly)."""
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvpe(argv[0], list(argv), dict(env))
    except OSError as exc:
        raise LaunchError(f"cannot start {argv[0]!r}: {exc.strerror}") from None
