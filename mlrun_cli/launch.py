"""Starting the entry point inside its environment: a local process or a container.

Either way the child gets the MLFLOW_* variables that attach it to the run, mlrun_log on its
PYTHONPATH, and its output streamed into the run's logs with secret values masked.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from mlrun_cli.envs import PreparedEnv
from mlrun_cli.execution import CommandOutcome, CommandRequest, run_command
from mlrun_cli.params import ResolvedCommand
from mlrun_cli.settings import Settings
from mlrun_cli.tracking.entities import Experiment, RunInfo
from mlrun_cli.tracking.file_store import FileStore

RUNTIME_DIR = Path(__file__).resolve().parent / "runtime"
CONTAINER_RUNTIME = "/mlrun/runtime"  # where mlrun_log's folder is mounted in containers
STDOUT_LOG = "logs/stdout.log"
STDERR_LOG = "logs/stderr.log"


@dataclass(frozen=True)
class Launch:
    """Everything that decides how the entry point starts."""

    project_dir: Path
    command: ResolvedCommand
    settings: Settings
    prepared: PreparedEnv
    run: RunInfo
    experiment: Experiment
    store: FileStore

    def log_path(self, name: str) -> Path:
        return self.store.artifact_dir(self.run) / name

    def tracking_env(self) -> dict[str, str]:
        """What makes `mlflow.start_run()` (and mlrun_log) in the entry point attach to the run."""
        return {
            "MLFLOW_RUN_ID": self.run.run_id,
            "MLFLOW_EXPERIMENT_ID": self.experiment.experiment_id,
            "MLFLOW_EXPERIMENT_NAME": self.experiment.name,
            "MLFLOW_TRACKING_URI": self.store.root.as_uri(),
            "MLFLOW_ALLOW_FILE_STORE": "true",
        }


def run_entry_point(
    launch: Launch, echo_stdout: IO[bytes] | None, echo_stderr: IO[bytes] | None
) -> CommandOutcome:
    if launch.prepared.container is None:
        return run_command(_command_request(launch, echo_stdout, echo_stderr))
    from mlrun_cli.containers import run_container
    from mlrun_cli.envs.docker import docker_client

    client = docker_client(launch.settings.environ)
    return run_container(client, _container_request(launch, echo_stdout, echo_stderr))


def _command_request(
    launch: Launch, echo_stdout: IO[bytes] | None, echo_stderr: IO[bytes] | None
) -> CommandRequest:
    env = {**launch.prepared.apply(launch.settings.environ), **launch.tracking_env()}
    env.setdefault("PYTHONUNBUFFERED", "1")  # output reaches the logs as it is printed
    # `import mlrun_log` works in every environment, without installing anything there.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(RUNTIME_DIR), env.get("PYTHONPATH")]))
    return CommandRequest(
        argv=("bash", "-c", launch.command.command),
        cwd=launch.project_dir,
        env=env,
        stdout_log=launch.log_path(STDOUT_LOG),
        stderr_log=launch.log_path(STDERR_LOG),
        echo_stdout=echo_stdout,
        echo_stderr=echo_stderr,
        redact=tuple(launch.command.secret_values()),
    )


def _container_request(
    launch: Launch, echo_stdout: IO[bytes] | None, echo_stderr: IO[bytes] | None
) -> Any:
    """The store is mounted at its own path, so the run's file:// URIs hold inside too."""
    from mlrun_cli.containers import ContainerRequest
    from mlrun_cli.envs.docker import CODE_DIR

    spec = launch.prepared.container
    root = str(launch.store.root)
    mounts = [(root, root, "rw"), (str(RUNTIME_DIR), CONTAINER_RUNTIME, "ro")]
    if not spec.code_in_image:
        mounts.append((str(launch.project_dir), CODE_DIR, "rw"))
    env = {
        **spec.environment,
        **launch.tracking_env(),
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": CONTAINER_RUNTIME,
    }
    return ContainerRequest(
        image=spec.image,
        argv=("/bin/sh", "-c", launch.command.command),
        workdir=CODE_DIR,
        mounts=(*mounts, *spec.mounts),
        env=env,
        user=spec.user,
        options=spec.options,
        stdout_log=launch.log_path(STDOUT_LOG),
        stderr_log=launch.log_path(STDERR_LOG),
        echo_stdout=echo_stdout,
        echo_stderr=echo_stderr,
        redact=tuple(launch.command.secret_values()),
    )
