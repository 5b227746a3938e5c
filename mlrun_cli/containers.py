"""Running an entry point in a Docker container, with the same outcome as a local process.

Through the docker SDK, never a shell string: the container is created with the command as
an argv, its stdout and stderr are streamed as they come into the terminal and the run's
logs, Ctrl-C or SIGTERM stop it (docker stop: SIGTERM, a grace period, then SIGKILL), and it
is removed whatever happens.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from mlrun_cli.execution import CommandOutcome, Redactor, echo_chunk, handling_signals


@dataclass(frozen=True)
class ContainerRequest:
    image: str
    argv: tuple[str, ...]
    workdir: str
    mounts: tuple[tuple[str, str, str], ...]  # (host path, container path, "rw" | "ro")
    env: Mapping[str, str]
    user: str | None
    options: Mapping[str, Any]  # docker SDK keywords from -A key=value
    stdout_log: Path
    stderr_log: Path
    echo_stdout: IO[bytes] | None = None
    echo_stderr: IO[bytes] | None = None
    redact: tuple[str, ...] = ()
    grace_seconds: int = 10


@dataclass
class _Stop:
    signum: int | None = None
    requested: threading.Event = field(default_factory=threading.Event)

    def handle(self, signum: int, _frame: object) -> None:
        if self.signum is None:
            self.signum = signum
        self.requested.set()


def run_container(client: Any, request: ContainerRequest) -> CommandOutcome:
    for path in (request.stdout_log, request.stderr_log):
        path.parent.mkdir(parents=True, exist_ok=True)
    container = client.containers.create(
        request.image,
        command=list(request.argv),
        working_dir=request.workdir,
        environment=dict(request.env),
        volumes={host: {"bind": inside, "mode": mode} for host, inside, mode in request.mounts},
        user=request.user,
        detach=True,
        **request.options,
    )
    stop = _Stop()
    started = time.time()
    try:
        with handling_signals(stop.handle):
            returncode = _follow(container, request, stop)
    finally:
        container.remove(force=True)
    killed_by = returncode - 128 if returncode > 128 and stop.signum is None else None
    return CommandOutcome(
        returncode=returncode,
        started=started,
        ended=time.time(),
        killed_by=killed_by if killed_by in (signal.SIGKILL, signal.SIGTERM) else None,
        interrupted_by=stop.signum,
    )


def _follow(container: Any, request: ContainerRequest, stop: _Stop) -> int:
    """Start the container, stream its output, and wait for its exit code."""
    container.start()
    pumps = [
        _pump(
            container.logs(stdout=True, stderr=False, stream=True, follow=True),
            request.stdout_log,
            request.echo_stdout,
            request.redact,
        ),
        _pump(
            container.logs(stdout=False, stderr=True, stream=True, follow=True),
            request.stderr_log,
            request.echo_stderr,
            request.redact,
        ),
    ]
    returncode = _wait(container, stop, request.grace_seconds)
    for pump in pumps:
        pump.join(timeout=5.0)
    return returncode


def _wait(container: Any, stop: _Stop, grace: int) -> int:
    result: dict[str, Any] = {}
    waiter = threading.Thread(target=lambda: result.update(container.wait()), daemon=True)
    waiter.start()
    while waiter.is_alive():
        if stop.requested.wait(0.1):
            container.stop(timeout=grace)  # SIGTERM, then SIGKILL after the grace period
            stop.requested.clear()
    waiter.join()
    return int(result.get("StatusCode", 1))


def _pump(
    chunks: Iterator[bytes], log_path: Path, echo: IO[bytes] | None, redact: tuple[str, ...]
) -> threading.Thread:
    def copy() -> None:
        redactor = Redactor(redact)
        current = echo
        with open(log_path, "wb") as log:
            for chunk in _chunks(chunks):
                data = redactor.feed(chunk)
                log.write(data)
                log.flush()
                current = echo_chunk(current, data) if data else current
            tail = redactor.flush()
            log.write(tail)
            if tail:
                echo_chunk(current, tail)

    thread = threading.Thread(target=copy, daemon=True)
    thread.start()
    return thread


def _chunks(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """The docker stream, ending quietly when the container is removed under it."""
    try:
        yield from chunks
    except Exception:  # the SDK raises its own and urllib3's types when the stream breaks
        return
