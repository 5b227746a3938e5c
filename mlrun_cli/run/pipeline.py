"""`mlrun run` as a pipeline: plan (every check, no writes), then execute and record.

    URI -> source -> project -> entry point -> command -> env plan        (plan_run)
        -> store -> experiment -> run RUNNING -> env -> process -> status (execute_run)

A bad input fails in `plan_run`, so it never leaves a run, an experiment or a store behind.
Once the run exists, whatever ends it (a failed env build, Ctrl-C) gives it a final status.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from mlrun_cli import __version__
from mlrun_cli.backends import select_backend
from mlrun_cli.backends.base import LaunchRequest, Outcome
from mlrun_cli.backends.streams import StopRequest
from mlrun_cli.core.credentials import credential_values
from mlrun_cli.core.settings import Settings
from mlrun_cli.envs import (
    BuildProgress,
    EnvContext,
    PreparedEnv,
    SilentProgress,
    select_manager,
)
from mlrun_cli.errors import EnvBuildError, NotFoundError, UsageError
from mlrun_cli.project.params import ResolvedParameter, parse_assignments, resolve_command
from mlrun_cli.project.spec import load_project, select_entry_point
from mlrun_cli.run.artifact_inputs import artifact_fetcher
from mlrun_cli.run.earlier_outputs import separate_outputs
from mlrun_cli.run.finish import finish_run
from mlrun_cli.run.host import host_description, host_name
from mlrun_cli.run.interrupts import (
    SignalGuard,
    interrupted_exit_code,
    killed_exit_code,
    stop_signals_interrupt,
)
from mlrun_cli.run.names import check_request_text, random_run_name
from mlrun_cli.run.node import claim_run, keep_submitted_source
from mlrun_cli.run.plan import RunPlan, RunRequest
from mlrun_cli.run.provenance import (
    RUN_RECORD_FORMAT,
    check_inputs_readable,
    digest_input,
    git_tags,
    record_git_diff,
    run_record,
)
from mlrun_cli.run.run_key import RunKey, compute_run_key
from mlrun_cli.run.runner_identity import group_tags, runner_tags
from mlrun_cli.sources.resolve import resolve_source
from mlrun_cli.tracking import artifacts
from mlrun_cli.tracking.entities import Experiment, RunInfo, RunStatus
from mlrun_cli.tracking.file_store import DEFAULT_EXPERIMENT_ID
from mlrun_cli.tracking.store import Store, log_locations, open_store
from mlrun_cli.tracking.tags import (
    COMMAND_TAG,
    DOCKER_IMAGE_ID_TAG,
    DOCKER_IMAGE_URI_TAG,
    DURATION_TAG,
    ENTRY_POINT_TAG,
    ENV_ENGINE_TAG,
    ENV_KEY_TAG,
    ENV_PYTHON_PATH_TAG,
    ENV_PYTHON_TAG,
    EXIT_CODE_TAG,
    HOST_TAG,
    PARENT_TAG,
    PLATFORM_TAG,
    PROJECT_BACKEND_TAG,
    PROJECT_ENV_TAG,
    RUN_KEY_TAG,
    SOURCE_TAG,
    SOURCE_TYPE_TAG,
    USER_TAG,
    VERSION_TAG,
)

if TYPE_CHECKING:  # imported by a job's run only
    from mlrun_cli.backends.jobs import JobPlan

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOutput:
    """Where the child's output is echoed while it is also written to the run's logs."""

    stdout: IO[bytes] | None = None
    stderr: IO[bytes] | None = None
    progress: BuildProgress = field(default_factory=SilentProgress)
    stop: StopRequest | None = None  # set by a sweep, whose own signal handler stops its runs
    created: Callable[[RunInfo], None] | None = None  # told the run's id once it exists


@dataclass(frozen=True)
class RunResult:
    run: RunInfo
    experiment: Experiment
    command: str
    exit_code: int  # what mlrun exits with
    outcome: Outcome
    logs: Mapping[str, str] = field(default_factory=dict)  # a path, or a URI in the store
    job_id: str | None = None

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
            "logs": dict(self.logs),
            "job_id": self.job_id,
        }


def plan_run(request: RunRequest, settings: Settings) -> RunPlan:
    """Validate the whole request; raises the first kind of mistake with all its instances."""
    experiment_name = request.experiment_name
    experiment_id = request.experiment_id
    if experiment_name is not None and experiment_id is not None:
        raise UsageError("pass --experiment-name or --experiment-id, not both")
    job = _plan_job(request, settings)
    if job is not None and request.run_id is not None:
        raise UsageError(
            "--run-id continues a run here; it does not go with --backend " + job.config.backend
        )
    if experiment_name is None and experiment_id is None:
        experiment_name = settings.environ.get("MLFLOW_EXPERIMENT_NAME") or None
        experiment_id = settings.environ.get("MLFLOW_EXPERIMENT_ID") or None
        if experiment_name and experiment_id:
            experiment_id = None  # MLflow lets the name win when both are set
    check_request_text(request.uri, request.entry_point, request.run_name, experiment_name)
    source = resolve_source(request.uri, settings.cwd, request.version, settings.environ)
    project = load_project(source.directory, settings.cwd)
    entry = select_entry_point(project, request.entry_point)
    given = parse_assignments(request.parameters)
    fetch = artifact_fetcher(settings, request.storage_dir)
    command = resolve_command(
        entry, given, settings.cwd, project.directory, request.secret_params, fetch
    )
    source, command = separate_outputs(source, entry.name, command, settings)
    if request.require_clean and source.git is not None and source.git.dirty:
        changed = len(source.git.untracked) + source.git.diff.count("diff --git ")

        raise UsageError(
            f"{source.git.toplevel} has uncommitted changes ({changed} files); commit or stash "
            "them, or drop --require-clean"
        )
    context = EnvContext(
        environ=settings.environ,
        display_base=settings.cwd,
        build_image=request.build_image,
        docker_args=tuple(request.docker_args),
        docker_user=request.docker_user,
    )
    if request.digest_inputs:
        check_inputs_readable(command.parameters)
    manager = select_manager(project, request.env_manager, context)
    env_plan = manager.plan(project)
    if request.backend == "docker" and env_plan.manager != "docker":
        raise UsageError("--backend docker runs docker_env projects; this one is not one")
    _check_downloads_reachable(command.parameters, env_plan.manager, job)
    return RunPlan(
        source=source,
        project=project,
        entry=entry,
        command=command.relocated(env_plan.path_map),
        manager=manager,
        env_plan=env_plan,
        backend=select_backend("docker" if env_plan.manager == "docker" else "local"),
        rebuild_env=request.rebuild_env,
        digest_inputs=request.digest_inputs,
        experiment_name=experiment_name,
        experiment_id=experiment_id,
        run_name=request.run_name or random_run_name(),
        extra_tags=nesting_tags(settings.environ, request.run_id),
        job=job,
        run_id=request.run_id,
    )


def _plan_job(request: RunRequest, settings: Settings) -> JobPlan | None:
    """The job a cluster backend will run; None runs here. A plain run never imports the job
    machinery (its import is a tenth of a noop run's start)."""
    if request.backend is None and request.backend_config is None and not request.detach:
        return None
    from mlrun_cli.backends.jobs import plan_job

    return plan_job(
        request.backend, request.backend_config, request.detach, settings.cwd, settings.environ
    )


def _check_downloads_reachable(
    parameters: Sequence[ResolvedParameter], manager: str, job: JobPlan | None
) -> None:
    """An artifact URI is downloaded to this host's storage dir, which a container does not
    mount and a cluster's nodes need not see: refused there, with what to do instead."""
    downloaded = [p for p in parameters if p.source]
    if not downloaded or (manager != "docker" and job is None):
        return
    where = f"--backend {job.config.backend}" if job is not None else "a docker_env project"
    raise UsageError(
        f"parameter '{downloaded[0].name}': artifact URIs ({downloaded[0].source}) are "
        f"downloaded to this host and do not reach {where} yet; download it into the project "
        "and pass its path"
    )


def nesting_tags(environ: Mapping[str, str], continued: str | None) -> dict[str, str]:
    """A run started while another is active (MLFLOW_RUN_ID, set inside an entry point) is
    its child, as in MLflow; a job's node side continuing its own run is not."""
    parent = environ.get("MLFLOW_RUN_ID", "").strip()
    if not parent or continued is not None:
        return {}
    return {PARENT_TAG: parent}


def execute_run(
    plan: RunPlan, settings: Settings, output: RunOutput, key: RunKey | None = None
) -> RunResult:
    """Create the run, provide its environment, run the entry point on this host (a process
    or a container), record how it ended. A stop signal at any point after the run exists ends
    it KILLED (see run.interrupts). A plan for a cluster engine goes through jobs.dispatch."""
    with stop_signals_interrupt() as guard:
        return _execute_run(plan, settings, output, guard, key)


def _execute_run(
    plan: RunPlan, settings: Settings, output: RunOutput, guard: SignalGuard, key: RunKey | None
) -> RunResult:
    store = open_store(settings)
    tags = {**start_tags(plan, settings), **git_tags(plan.source), **runner_tags()}
    tags = {**tags, **plan.extra_tags}
    logged: Mapping[str, str] = {}
    guard.hold()  # the run exists whole, with the tags that name its runner, before a signal
    if plan.run_id is None:
        experiment = experiment_for(store, plan)
        run = store.create_run(experiment, plan.run_name, settings.user, tags)
    else:
        run, experiment, logged = claim_run(store, plan.run_id, tags)
    log.info("run %s (%s) in experiment '%s' started", run.run_id, run.run_name, experiment.name)
    if output.created is not None:
        output.created(run)
    prepared: PreparedEnv | None = None
    try:
        guard.release()
        params = plan.command.recorded_values()
        store.log_params(run, {k: v for k, v in params.items() if k not in logged})
        key = key or compute_run_key(plan)  # digests the inputs: slow, so inside the run
        store.set_tags(run, {RUN_KEY_TAG: key.key})
        record_inputs(plan, store, run, key)
        prepared = _prepare_env(plan, store, run, output.progress)
        log.info("command: %s", plan.command.display_command)
        request = _launch_request(plan, settings, store, run, experiment, prepared, output)
        outcome = plan.backend.launch(request)
        guard.hold()  # the outcome is known: it is recorded whatever arrives now
    except BaseException as exc:
        # Whatever stops us here (a failed build, a launch failure, Ctrl-C before the child
        # started), the run must not stay RUNNING.
        guard.hold()
        interrupted = isinstance(exc, KeyboardInterrupt)
        if isinstance(exc, KeyboardInterrupt):
            log.warning("run %s KILLED while it was being prepared", run.run_id)
            store.set_tags(run, {EXIT_CODE_TAG: str(killed_exit_code(exc))})
        status = RunStatus.KILLED if interrupted else RunStatus.FAILED
        finish_run(store, run, status, record=_recorder(plan, store, prepared, None))
        raise
    status, exit_code = _final_status(outcome)
    # An entry point that exits 0 after a stop signal still ran KILLED: never record 0 for it.
    recorded_code = outcome.returncode or exit_code
    store.set_tags(
        run, {EXIT_CODE_TAG: str(recorded_code), DURATION_TAG: f"{outcome.duration:.3f}"}
    )
    _record_outputs(plan, store, run)
    ended = int(outcome.ended * 1000)
    record = _recorder(plan, store, prepared, outcome)
    run = finish_run(store, run, status, end_time=ended, record=record)
    logs = log_locations(store, run)
    return RunResult(run, experiment, plan.command.display_command, exit_code, outcome, logs)


def _launch_request(
    plan: RunPlan,
    settings: Settings,
    store: Store,
    run: RunInfo,
    experiment: Experiment,
    prepared: PreparedEnv,
    output: RunOutput,
) -> LaunchRequest:
    return LaunchRequest(
        command=plan.command.command,
        project_dir=plan.project.directory,
        environ=settings.environ,
        run_env=store.child_environment(run, experiment),
        prepared=prepared,
        shared_paths=store.host_paths(run),
        stdout_log=store.artifact_dir(run) / artifacts.STDOUT_LOG,
        stderr_log=store.artifact_dir(run) / artifacts.STDERR_LOG,
        echo_stdout=output.stdout,
        echo_stderr=output.stderr,
        redact=(
            *plan.command.secret_values(),
            *credential_values(settings.environ, settings.tracking_uri),
        ),
        on_group_started=lambda pgid: store.set_tags(run, group_tags(pgid)),
        stop=output.stop,
    )


def record_inputs(plan: RunPlan, store: Store, run: RunInfo, key: RunKey) -> None:
    """The uncommitted changes and the data the run reads, before it can change them."""
    record_git_diff(store, run, plan.source)
    digests = key.digests  # computed once, for the run key
    if not digests:
        return
    store.set_tags(run, {f"mlrun.input.{d.name}.digest": d.sha256 for d in digests})
    document = {"format": RUN_RECORD_FORMAT, "inputs": [d.as_json() for d in digests]}
    store.write_artifact(run, artifacts.INPUTS, json.dumps(document, indent=2))
    for d in digests:
        dataset = {
            "name": Path(d.path).name,
            "digest": d.sha256[:32],
            "source_type": "local",
            "source": json.dumps({"uri": Path(d.path).as_uri()}),
            "schema": None,
            "profile": json.dumps({"files": d.files, "bytes": d.size}),
        }
        store.log_dataset_input(run, dataset, context=d.name)


def _record_outputs(plan: RunPlan, store: Store, run: RunInfo) -> None:
    """The digests of what the run wrote to its output `path` parameters."""
    if not plan.digest_inputs:
        return
    found = (digest_input(p, role="output") for p in plan.command.parameters)
    digests = [d for d in found if d is not None]
    if digests:
        store.set_tags(run, {f"mlrun.output.{d.name}.digest": d.sha256 for d in digests})
        document = {"format": RUN_RECORD_FORMAT, "outputs": [d.as_json() for d in digests]}
        store.write_artifact(run, artifacts.OUTPUTS, json.dumps(document, indent=2))


def write_run_record(
    plan: RunPlan,
    store: Store,
    run: RunInfo,
    prepared: PreparedEnv | None,
    outcome: Outcome | None,
) -> None:
    """The record of a run not ended yet (a submitted one: its node completes it)."""
    record = planned_record(plan, store, run, prepared, outcome)
    store.write_artifact(run, artifacts.RUN_RECORD, json.dumps(record, indent=2))


def _recorder(
    plan: RunPlan, store: Store, prepared: PreparedEnv | None, outcome: Outcome | None
) -> Callable[[RunInfo], dict[str, Any]]:
    """The record `finish_run` writes for the ended run."""
    return lambda ended: planned_record(plan, store, ended, prepared, outcome)


def planned_record(
    plan: RunPlan,
    store: Store,
    run: RunInfo,
    prepared: PreparedEnv | None,
    outcome: Outcome | None,
) -> dict[str, Any]:
    """The run's record (provenance/run.json): the plan, the env it ran in, how it went."""
    environment = {
        "manager": plan.env_plan.manager,
        "key": prepared.key if prepared else None,
        "engine": prepared.engine if prepared else None,
        "python": prepared.python_version if prepared else None,
    }
    record = run_record(
        source=plan.source,
        entry_point=plan.entry.name,
        parameters=plan.command.parameters,
        command=plan.command.display_command,
        environment=environment,
        run={
            "run_id": run.run_id,
            "experiment_id": run.experiment_id,
            "status": run.status.name,
            "start_time": run.start_time,
            "end_time": run.end_time,
            "exit_code": outcome.returncode if outcome else None,
        },
    )
    if plan.run_id is not None:
        record = keep_submitted_source(store.read_artifact(run, artifacts.RUN_RECORD), record)
    return record


def _prepare_env(plan: RunPlan, store: Store, run: RunInfo, progress: BuildProgress) -> PreparedEnv:
    """Build or reuse the env; its build log and lock file become artifacts of the run."""
    try:
        prepared = plan.prepared_env or plan.manager.prepare(
            plan.env_plan, progress, plan.rebuild_env
        )
    except EnvBuildError as exc:
        if exc.log_path is not None:
            store.add_artifact(run, exc.log_path, artifacts.BUILD_LOG)
        raise
    store.set_tags(run, _env_tags(prepared))
    if prepared.build_log is not None:
        store.add_artifact(run, prepared.build_log, artifacts.BUILD_LOG)
    if prepared.lock_file is not None and prepared.lock_file.is_file():
        store.add_artifact(run, prepared.lock_file, artifacts.ENV_LOCK)
    return prepared


def experiment_for(store: Store, plan: RunPlan) -> Experiment:
    """The plan's experiment, created when named and missing (the store too)."""
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


def start_tags(plan: RunPlan, settings: Settings) -> dict[str, str]:
    """MLflow's own tag names (its UI shows them) plus mlrun's under `mlrun.`."""
    return {
        USER_TAG: settings.user,
        SOURCE_TAG: plan.source.source_name,
        SOURCE_TYPE_TAG: "PROJECT",
        ENTRY_POINT_TAG: plan.entry.name,
        PROJECT_ENV_TAG: plan.env_plan.manager,
        PROJECT_BACKEND_TAG: "local",
        VERSION_TAG: __version__,
        COMMAND_TAG: plan.command.display_command,
        HOST_TAG: host_name(),
        PLATFORM_TAG: host_description(),
    }


def _env_tags(prepared: PreparedEnv) -> dict[str, str]:
    container = prepared.container
    candidates = {
        DOCKER_IMAGE_URI_TAG: container.image if container else None,
        DOCKER_IMAGE_ID_TAG: container.image_id if container else None,
        ENV_PYTHON_TAG: prepared.python_version,
        ENV_PYTHON_PATH_TAG: prepared.python,
        ENV_KEY_TAG: prepared.key,
        ENV_ENGINE_TAG: prepared.engine,
    }
    return {key: value for key, value in candidates.items() if value}


def _final_status(outcome: Outcome) -> tuple[RunStatus, int]:
    if outcome.interrupted_by is not None:
        return RunStatus.KILLED, interrupted_exit_code(outcome.interrupted_by)
    if outcome.killed_by is not None:
        return RunStatus.KILLED, outcome.returncode
    if outcome.returncode == 0:
        return RunStatus.FINISHED, 0
    return RunStatus.FAILED, outcome.returncode
