"""The one place that starts processes: every `subprocess` call of mlrun goes through here.

Helper commands (a version query, a build step, git) run to completion with their output
captured or logged; the entry point is spawned in its own process group (`spawn_group`) so
that a signal reaches it exactly once, forwarded by the backend, and everything it started
can be stopped together. The group's leader is `group_supervisor.py`, which ends the group
if mlrun dies (its module docstring says why it is a supervisor and not PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from mlrun_cli.errors import LaunchError

SUPERVISOR = Path(__file__).with_name("group_supervisor.py")


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


class GroupProcess:
    """The entry point's group (led by the supervisor), with both output streams piped to us."""

    def __init__(self, popen: subprocess.Popen[bytes], lifeline: int) -> None:
        self._popen = popen
        self.pid = popen.pid  # the supervisor's, also the process group id
        self._lifeline: int | None = lifeline  # closed (by us, or by our death): group ends
        self._exited = _exit_notifier(popen.pid)

    @property
    def stdout(self) -> IO[bytes] | None:
        return self._popen.stdout

    @property
    def stderr(self) -> IO[bytes] | None:
        return self._popen.stderr

    def wait(self, timeout: float) -> int | None:
        """The return code (negative: killed by that signal), or None while it runs. Seen the
        moment the supervisor exits where the kernel offers a pidfd (Popen's own timed wait
        polls with sleeps of up to 50 ms, which a short entry point pays in full)."""
        if self._exited is not None and not self._exited.poll(timeout * 1000):
            return None
        try:
            returncode = self._popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        if self._lifeline is not None:
            os.close(self._lifeline)
            self._lifeline = None
        if self._exited is not None:
            self._exited.close()
            self._exited = None
        return returncode


class _ExitNotifier:
    """A pidfd, readable once the process exits (Linux 5.3+), polled without a descriptor
    limit."""

    def __init__(self, pidfd: int) -> None:
        self._pidfd = pidfd
        self._poller = select.poll()
        self._poller.register(pidfd, select.POLLIN)

    def poll(self, milliseconds: float) -> bool:
        """Whether the process has exited, waiting up to `milliseconds`."""
        return bool(self._poller.poll(milliseconds))

    def close(self) -> None:
        os.close(self._pidfd)


def _exit_notifier(pid: int) -> _ExitNotifier | None:
    try:
        return _ExitNotifier(os.pidfd_open(pid))
    except (AttributeError, OSError):  # not Linux, or a kernel before 5.3
        return None


def spawn_group(
    argv: tuple[str, ...], cwd: Path, env: Mapping[str, str], grace: float
) -> GroupProcess:
    """Start `argv` in a new session and process group led by the group supervisor, which
    ends the group if this process dies, or what is left of it after a stop (SIGTERM, SIGKILL
    after `grace` seconds). A session rather than only a group: Ctrl-C on the
    terminal reaches mlrun alone, which forwards it once, and works the same from any thread
    (no preexec_fn)."""
    # A background process group that reads the terminal would be stopped (SIGTTIN).
    stdin = subprocess.DEVNULL if _stdin_is_terminal() else None
    if shutil.which(argv[0], path=env.get("PATH", os.defpath)) is None:
        raise LaunchError(f"cannot start {argv[0]!r}: No such file or directory")
    watched, lifeline = os.pipe()
    supervisor = (sys.executable, "-I", "-S", str(SUPERVISOR), str(watched), str(grace))
    try:
        popen = subprocess.Popen(
            [*supervisor, *argv],
            cwd=cwd,
            env=dict(env),
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            close_fds=True,
            pass_fds=(watched,),
            start_new_session=True,  # its own session, so its own process group (pgid = pid)
        )
    except OSError as exc:
        os.close(lifeline)
        raise LaunchError(_spawn_failure(exc, cwd)) from None
    finally:
        os.close(watched)
    return GroupProcess(popen, lifeline)


def _spawn_failure(exc: OSError, cwd: Path) -> str:
    """Name what could not be used: the working directory or the interpreter that runs the
    supervisor; not the command, which the supervisor starts and reports on itself."""
    if exc.filename is not None and os.fsdecode(exc.filename) == str(cwd):
        return f"cannot enter the project directory {cwd}: {exc.strerror}"
    return f"cannot start the entry point's supervisor with {sys.executable}: {exc.strerror}"


def _stdin_is_terminal() -> bool:
    try:
        return os.isatty(sys.stdin.fileno())
    except (AttributeError, OSError, ValueError):
        return False
