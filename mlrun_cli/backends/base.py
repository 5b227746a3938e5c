"""The Backend seam: where a prepared entry point executes, and how it ended.

The pipeline builds one `LaunchRequest` (the rendered command, the project, the environment
variables, the folders the child writes through, the logs, what to redact) and hands it to the
backend chosen in `plan_run`. Every backend returns the same `Outcome`, so the final status is
decided in one place whatever ran the command: a local process group, a container, or a job on
a cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from mlrun_cli.backends.streams import StopRequest
from mlrun_cli.envs.base import PreparedEnv

# mlrun_log's folder: on the child's PYTHONPATH, so `import mlrun_log` works in every env.
RUNTIME_DIR = Path(__file__).resolve().parent.parent / "runtime"


@dataclass(frozen=True)
class LaunchRequest:
    command: str  # the rendered MLproject command; every value in it is shell-quoted
    project_dir: Path
    environ: Mapping[str, str]  # the invoking environment
    run_env: Mapping[str, str]  # what attaches the child to its run (MLFLOW_RUN_ID, ...)
    prepared: PreparedEnv
    shared_paths: tuple[Path, ...]  # host folders the child writes through, at the same path
    stdout_log: Path
    stderr_log: Path
    echo_stdout: IO[bytes] | None = None
    echo_stderr: IO[bytes] | None = None
    redact: tuple[str, ...] = ()  # secret values, replaced by *** in the logs and the echo
    grace_seconds: float = 10.0  # between the forwarded stop signal and SIGKILL
    # Called with the entry point's process group id once it runs (recorded for `runs gc`).
    on_group_started: Callable[[int], None] | None = None
    # Given by a caller that takes the signals itself (a sweep runs launches in threads,
    # where handlers cannot be installed): its handler feeds this request.
    stop: StopRequest | None = None


@dataclass(frozen=True)
class Outcome:
    returncode: int  # shell convention: 128+N when signal N ended the child
    started: float
    ended: float
    killed_by: int | None = None  # the signal that ended the child, if one did
    interrupted_by: int | None = None  # the signal mlrun received and forwarded

    @property
    def duration(self) -> float:
        return self.ended - self.started


class Backend(Protocol):
    name: str

    def launch(self, request: LaunchRequest) -> Outcome:
        """Run the command to its end (or interruption); raise LaunchError if it cannot start."""
        ...
