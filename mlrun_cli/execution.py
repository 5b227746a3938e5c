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
from collections.abc import Mapping
from dataclasses import dataclass, field
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
    previous: dict[int, Any] = field(default_factory=dict)

    def handle(self, signum: int, _frame: object) -> None:
        if self.signum is None:
            self.signum = signum
            self.kill_at = time.monotonic() + self.grace
            _signal_group(self.pgid, signum)
        else:
            _signal_group(self.pgid, signal.SIGKILL)  # asked twice: stop now

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # embedded use from a worker thread: the host owns signals
        for signum in FORWARDED_SIGNALS:
            self.previous[signum] = signal.signal(signum, self.handle)

    def restore(self) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)


def run_command(request: CommandRequest) -> CommandOutcome:
    """Run `request.argv` to completion (or interruption) and say how it ended."""
    for log_path in (request.stdout_log, request.stderr_log):
        log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(request.stdout_log, "wb") as out_log, open(request.stderr_log, "wb") as err_log:
        started = time.time()
        process = _spawn(request)
        interruption = _Interruption(pgid=process.pid, grace=request.grace_seconds)
        interruption.install()
        try:
            pumps = [
                _start_pump(process.stdout, out_log, request.echo_stdout),
                _start_pump(process.stderr, err_log, request.echo_stderr),
            ]
            returncode = _wait(process, interruption)
            for pump in pumps:
                pump.join(timeout=5.0)  # a detached grandchild may keep a pipe open
        finally:
            interruption.restore()
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
    source: IO[bytes] | None, log: IO[bytes], echo: IO[bytes] | None
) -> threading.Thread:
    thread = threading.Thread(target=_pump, args=(source, log, echo), daemon=True)
    thread.start()
    return thread


def _pump(source: IO[bytes] | None, log: IO[bytes], echo: IO[bytes] | None) -> None:
    """Copy chunks as they arrive; the log is flushed each time so a kill loses nothing."""
    if source is None:
        return
    fd = source.fileno()
    while chunk := os.read(fd, _CHUNK):
        log.write(chunk)
        log.flush()
        if echo is not None:
            try:
                echo.write(chunk)
                echo.flush()
            except (BrokenPipeError, ValueError):
                echo = None  # the terminal went away; keep logging
    source.close()


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
