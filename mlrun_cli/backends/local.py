"""The local backend: the entry point as a process group on this machine, inside its env."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import IO

from mlrun_cli.backends.base import RUNTIME_DIR, LaunchRequest, Outcome
from mlrun_cli.backends.streams import StopRequest, handling_signals, start_pump
from mlrun_cli.core.processes import GroupProcess, spawn_group

_CHUNK = 65536
PUMP_DRAIN_SECONDS = 5.0


class LocalBackend:
    name = "local"

    def launch(self, request: LaunchRequest) -> Outcome:
        env = {**request.prepared.apply(request.environ), **request.run_env}
        env.setdefault("PYTHONUNBUFFERED", "1")  # output reaches the logs as it is printed
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(RUNTIME_DIR), env.get("PYTHONPATH")]))
        started = time.time()
        stop = request.stop or StopRequest()
        with handling_signals(stop):  # from before the group exists: no signal is lost
            process = spawn_group(
                ("bash", "-c", request.command), request.project_dir, env, request.grace_seconds
            )
            _announce(process, request)
            pumps = [
                start_pump(_chunks(process.stdout), request.stdout_log, request.echo_stdout,
                           request.redact),
                start_pump(_chunks(process.stderr), request.stderr_log, request.echo_stderr,
                           request.redact),
            ]  # fmt: skip
            returncode = _wait(process, stop, request.grace_seconds)
            _drain(pumps, PUMP_DRAIN_SECONDS)
        killed_by = -returncode if returncode < 0 else None
        return Outcome(
            returncode=_exit_code(returncode, stop.signum),
            started=started,
            ended=time.time(),
            killed_by=killed_by,
            interrupted_by=stop.signum,
        )


def _exit_code(returncode: int, stopped_by: int | None) -> int:
    """128 + the signal that killed the entry point; after a stop that it answered with a
    clean exit, 128 + the stop signal, so a KILLED run never records exit code 0."""
    if returncode < 0:
        return 128 - returncode
    if returncode == 0 and stopped_by is not None:
        return 128 + stopped_by
    return returncode


def _drain(pumps: list[threading.Thread], timeout: float) -> None:
    """Let the pumps copy the last output, within one deadline for all: a process that left
    the group (setsid) may hold a pipe open for ever."""
    deadline = time.monotonic() + timeout
    for pump in pumps:
        pump.join(timeout=max(0.0, deadline - time.monotonic()))


def _announce(process: GroupProcess, request: LaunchRequest) -> None:
    """Tell the caller the group id; if that fails, the group must not run on unrecorded."""
    if request.on_group_started is None:
        return
    try:
        request.on_group_started(process.pid)
    except BaseException:
        _signal_group(process.pid, signal.SIGKILL)
        process.wait(timeout=10.0)
        raise


def _chunks(source: IO[bytes] | None) -> Iterator[bytes]:
    if source is None:
        return
    with source:
        while chunk := os.read(source.fileno(), _CHUNK):
            yield chunk


def _wait(process: GroupProcess, stop: StopRequest, grace: float) -> int:
    """Forward the first signal to the group; SIGKILL after the grace period or a second one."""
    kill_at: float | None = None
    while (returncode := process.wait(timeout=0.1)) is None:
        if stop.take(0) and stop.signum is not None:
            _signal_group(process.pid, signal.SIGKILL if stop.forced else stop.signum)
            kill_at = time.monotonic() + grace
        if kill_at is not None and time.monotonic() >= kill_at:
            _signal_group(process.pid, signal.SIGKILL)
            kill_at = None
    return returncode


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # the group may already be gone
        os.killpg(pgid, signum)
