"""`mlrun run` as a pipeline: plan (every check, no writes), then execute and record.

    URI -> source -> project -> entry point -> command -> env manager     (plan_run)
        -> store -> experiment -> env -> run RUNNING -> process -> status (execute_run)

A bad input fails in `plan_run`, so it never leaves a run, an experiment or a store behind.
"""

from __future__ import annotations

import logging
import platform
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from mlrun_cli import __version__
from mlrun_cli.envs import EnvManager, PreparedEnv, select_manager
from mlrun_cli.errors import NotFoundError, UsageError
from mlrun_cli.execution import CommandOutcome, CommandRequest, run_command
from mlrun_cli.params import ResolvedCommand, parse_assignments, resolve_command
from mlrun_cli.run_names import random_run_name
from mlrun_cli.settings import Settings
from mlrun_cli.sources import ProjectSource, resolve_source
from mlrun_cli.spec import EntryPoint, Project, load_project, select_entry_point
from mlrun_cli.tracking.entities import Experiment, RunInfo, RunStatus
from mlrun_cli.tracking.file_store import DEFAULT_EXPERIMENT_ID, FileStore, now_ms

log = logging.getLogger(__name__)

STDOUT_LOG = "logs/stdout.log"
STDERR_LOG = "logs/stderr.log"
INTERRUPTED_EXIT_CODE = 130


@dataclass(frozen=True)
class RunRequest:
    uri: str
    entry_point: str = "main"
    parameters: Sequence[str] = ()  # raw `-P name=value` items
    env_manager: str | None = None
    experiment_name: str | None = None
    experiment_id: str | None = None
    run_name: str | None = None
    version: str | None = None


@dataclass(frozen=True)
class RunPlan:
    """Everything decided before anything is written."""

    source: ProjectSource
    project: Project
    entry: EntryPoint
    command: ResolvedCommand
    manager: EnvManager
    experiment_name: str | None
    experiment_id: str | None
    run_name: str


@dataclass(frozen=True)
class RunOutput:
    """Where the child's output is echoed while it is also written to the run's logs."""

    stdout: IO[bytes] | None = None
    stderr: IO[bytes] | None = None


@dataclass(frozen=True)
class RunResult:
    run: RunInfo
    experiment: Experiment
    command: str
    exit_code: int  # what mlrun exits with
    outcome: CommandOutcome
    logs: Mapping[str, Path] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        return {
            "run_id": self.run.run_id,
            "run_name": self.run.run_name,
            "experiment_id": self.experiment.experiment_id,
            "experiment_name": self.experiment.name,
            "status": self.run.status.name,
            "exit_code": self.exit_code,
            "returncode": self.outcome.returncode,
            "command": self.command,
            "start_time": self.run.start_time,
            "end_time": self.run.end_time,
            "duration_seconds": round(self.outcome.duration, 3),
            "artifact_uri": self.run.artifact_uri,
            "logs": {name: str(path) for name, path in self.logs.items()},
        }


def plan_run(request: RunRequest, settings: Settings) -> RunPlan:
    """Validate the whole request; raises the first kind of mistake with all its instances."""
    experiment_name = request.experiment_name
    experiment_id = request.experiment_id
    if experiment_name is not None and experiment_id is not None:
        raise UsageError("pass --experiment-name or --experiment-id, not both")
    if experiment_name is None and experiment_id is None:
        experiment_name = settings.environ.get("MLFLOW_EXPERIMENT_NAME") or None
        experiment_id = settings.environ.get("MLFLOW_EXPERIMENT_ID") or None
        if experiment_name and experiment_id:
            experiment_id = None  # MLflow lets the name win when both are set
    source = resolve_source(request.uri, settings.cwd, request.version)
    project = load_project(source.directory, settings.cwd)
    entry = select_entry_point(project, request.entry_point)
    given = parse_assignments(request.parameters)
    command = resolve_command(entry, given, settings.cwd, project.directory)
    manager = select_manager(project, request.env_manager)
    run_name = request.run_name or random_run_name()
    return RunPlan(
        source, project, entry, command, manager, experiment_name, experiment_id, run_name
    )


def execute_run(plan: RunPlan, settings: Settings, output: RunOutput) -> RunResult:
    """Create the run, run the entry point in it, and record how it ended."""
    store = FileStore(settings.store_root)
    experiment = _experiment(store, plan)
    prepared = plan.manager.prepare(plan.project, settings.environ)
    run = store.create_run(
        experiment, plan.run_name, settings.user, _start_tags(plan, settings, prepared)
    )
    store.log_params(run, plan.command.values())
    logs = {
        "stdout": store.artifact_dir(run) / STDOUT_LOG,
        "stderr": store.artifact_dir(run) / STDERR_LOG,
    }
    log.info("run %s (%s) in experiment '%s' started", run.run_id, run.run_name, experiment.name)
    log.info("command: %s", plan.command.command)
    request = CommandRequest(
        argv=("bash", "-c", plan.command.command),
        cwd=plan.project.directory,
        env=_child_env(settings, prepared, run, experiment, store),
        stdout_log=logs["stdout"],
        stderr_log=logs["stderr"],
        echo_stdout=output.stdout,
        echo_stderr=output.stderr,
    )
    try:
        outcome = run_command(request)
    except BaseException as exc:
        # Whatever stops us here (a launch failure, Ctrl-C before the child started), the run
        # must not stay RUNNING.
        interrupted = isinstance(exc, KeyboardInterrupt)
        store.finish_run(run, RunStatus.KILLED if interrupted else RunStatus.FAILED, now_ms())
        raise
    status, exit_code = _final_status(outcome)
    store.set_tags(
        run,
        {"mlrun.exit_code": str(outcome.returncode), "mlrun.duration_s": f"{outcome.duration:.3f}"},
    )
    run = store.finish_run(run, status, int(outcome.ended * 1000))
    return RunResult(run, experiment, plan.command.command, exit_code, outcome, logs)


def _experiment(store: FileStore, plan: RunPlan) -> Experiment:
    if plan.experiment_id is not None and plan.experiment_id != DEFAULT_EXPERIMENT_ID:
        experiment = store.get_experiment(plan.experiment_id)  # before the store is created
        store.ensure()
    else:
        store.ensure()
        if plan.experiment_name is not None:
            return store.get_or_create_experiment(plan.experiment_name)
        experiment = store.get_experiment(DEFAULT_EXPERIMENT_ID)
    if experiment.lifecycle_stage != "active":
        raise NotFoundError(
            f"experiment {experiment.experiment_id} is deleted; restore it with "
            f"`mlrun experiments restore --experiment-id {experiment.experiment_id}`"
        )
    return experiment


def _start_tags(plan: RunPlan, settings: Settings, prepared: PreparedEnv) -> dict[str, str]:
    """MLflow's own tag names (its UI shows them) plus mlrun's under `mlrun.`."""
    tags = {
        "mlflow.user": settings.user,
        "mlflow.source.name": plan.source.source_name,
        "mlflow.source.type": "PROJECT",
        "mlflow.project.entryPoint": plan.entry.name,
        "mlflow.project.env": prepared.manager,
        "mlflow.project.backend": "local",
        "mlrun.version": __version__,
        "mlrun.command": plan.command.command,
        "mlrun.host": socket.gethostname(),
        "mlrun.platform": platform.platform(),
    }
    if prepared.python_version:
        tags["mlrun.python"] = prepared.python_version
    if prepared.python:
        tags["mlrun.python.path"] = prepared.python
    if prepared.key:
        tags["mlrun.env.key"] = prepared.key
    return tags


def _child_env(
    settings: Settings,
    prepared: PreparedEnv,
    run: RunInfo,
    experiment: Experiment,
    store: FileStore,
) -> dict[str, str]:
    """The child attaches to our run: `mlflow.start_run()` there resumes it."""
    env = {**settings.environ, **prepared.env_vars}
    env.update(
        MLFLOW_RUN_ID=run.run_id,
        MLFLOW_EXPERIMENT_ID=experiment.experiment_id,
        MLFLOW_EXPERIMENT_NAME=experiment.name,
        MLFLOW_TRACKING_URI=store.root.as_uri(),
        MLFLOW_ALLOW_FILE_STORE="true",
    )
    env.setdefault("PYTHONUNBUFFERED", "1")  # output reaches the logs as it is printed
    return env


def _final_status(outcome: CommandOutcome) -> tuple[RunStatus, int]:
    if outcome.interrupted_by is not None:
        return RunStatus.KILLED, INTERRUPTED_EXIT_CODE
    if outcome.killed_by is not None:
        return RunStatus.KILLED, outcome.returncode
    if outcome.returncode == 0:
        return RunStatus.FINISHED, 0
    return RunStatus.FAILED, outcome.returncode
