"""`mlrun run --backend slurm|ray`: create the run SCHEDULED, stage the project, submit a job
that runs mlrun on the node with `--run-id`, and (unless detached) follow it to its end.

The submitter validates and resolves everything (a bad input never reaches the engine), and
records what it knows: params, source and git provenance, input digests. The node-side mlrun
builds or reuses the env, captures the logs and writes the final status, exactly as locally.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from mlrun_cli.backends.base import Outcome
from mlrun_cli.backends.jobs import BackendConfig, JobPlan, JobSpec, job_id_tag
from mlrun_cli.backends.streams import StopRequest, handling_signals
from mlrun_cli.core.caches import staging_dir
from mlrun_cli.core.settings import Settings
from mlrun_cli.jobs.follow import INTERRUPTED_EXIT_CODE, final_exit_code, follow_run
from mlrun_cli.run.finish import finish_run
from mlrun_cli.run.interrupts import stop_signals_interrupt
from mlrun_cli.run.pipeline import (
    RunOutput,
    RunResult,
    experiment_for,
    record_inputs,
    start_tags,
    write_run_record,
)
from mlrun_cli.run.plan import RunPlan
from mlrun_cli.run.provenance import git_tags
from mlrun_cli.run.run_key import RunKey, compute_run_key
from mlrun_cli.tracking.entities import Experiment, RunInfo, RunStatus
from mlrun_cli.tracking.store import Store, log_locations, open_store
from mlrun_cli.tracking.tags import (
    BACKEND_TAG,
    DURATION_TAG,
    PROJECT_BACKEND_TAG,
    REASON_TAG,
    RUN_KEY_TAG,
)

log = logging.getLogger(__name__)

# Copied to the job only when set here: what mlrun and MLflow on the node need to reach the
# store and reuse the caches, and how packages are fetched.
ALWAYS_EXPORTED = (
    "MLRUN_CACHE_DIR", "MLRUN_ENV_ROOT", "MLRUN_SOURCE_ROOT", "MLRUN_CONDA_EXE",
    "MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_INSECURE_TLS", "MLFLOW_TRACKING_SERVER_CERT_PATH",
    "MLFLOW_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
    "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_CERT",
    "UV_INDEX_URL", "UV_EXTRA_INDEX_URL", "UV_FIND_LINKS", "UV_PYTHON_INSTALL_DIR",
    "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
    "http_proxy", "https_proxy", "no_proxy",
)  # fmt: skip
# mlrun's own lines in the job's output (the entry point's output is in the run's logs).
_NODE_PREFIXES = ("mlrun", "    ", "Error:", "Usage:", "slurmstepd")
_NODE_STARTED = "mlrun: run "  # the node-side mlrun's first line
_NOT_STAGED = (".git", "mlruns", ".venv", "__pycache__", ".mlrun-staging")


def submit_run(plan: RunPlan, job: JobPlan, settings: Settings, output: RunOutput) -> RunResult:
    """A stop signal at any point ends the run KILLED: before the job is submitted here, after
    that by cancelling the job where it is followed (see run.interrupts)."""
    store = open_store(settings)
    experiment = experiment_for(store, plan)
    key = compute_run_key(plan)
    stop = output.stop or StopRequest()  # a sweep's: its trial's Ctrl-C or pruning
    with stop_signals_interrupt() as guard:
        guard.hold()  # the run exists whole and SCHEDULED before a signal ends it
        run = scheduled_run(plan, job, settings, store, experiment, key)
        started = time.time()
        try:
            guard.release()
            record_inputs(plan, store, run, key)
            write_run_record(plan, store, run, None, None)
            store.publish(run)  # before the job starts: the node stages into the same folder
            spec = job_spec(plan, job, settings, store, run, experiment)
            guard.hold()  # a job once submitted is cancelled by a signal, never lost
            job_id = job.backend.submit(spec)
        except BaseException as exc:
            guard.hold()
            interrupted = isinstance(exc, KeyboardInterrupt)
            finish_run(store, run, RunStatus.KILLED if interrupted else RunStatus.FAILED)
            raise
        with handling_signals(stop):
            if guard.pending is not None:
                stop.handle(guard.pending, None)  # follow_run cancels the job at once
            return _followed(plan, job, store, experiment, run, spec, job_id, started, output, stop)


def _followed(
    plan: RunPlan,
    job: JobPlan,
    store: Store,
    experiment: Experiment,
    run: RunInfo,
    spec: JobSpec,
    job_id: str,
    started: float,
    output: RunOutput,
    stop: StopRequest,
) -> RunResult:
    """The submitted job to its end (unless detached), with the node's output if it failed;
    a signal that came while it was submitted cancels it, detached or not."""
    name = job.backend.name
    store.set_tags(run, {job_id_tag(name): job_id})
    logs = log_locations(store, run)
    if job.detach and stop.signum is None:
        outcome = Outcome(returncode=0, started=started, ended=time.time())
        return RunResult(run, experiment, plan.command.display_command, 0, outcome, logs, job_id)
    final = follow_run(
        store, run.run_id, job.backend, job_id, output.stdout, output.stderr, stop=stop
    )
    exit_code = final_exit_code(final, job.backend, job_id)
    if final.info.status != RunStatus.FINISHED:
        show_node_output(spec.output_log)
    if REASON_TAG in final.tags:
        log.warning("%s ended job %s: %s", name, job_id, final.tags[REASON_TAG])
    if stop.signum is not None and final.info.status == RunStatus.KILLED:
        exit_code = INTERRUPTED_EXIT_CODE  # Ctrl-C cancelled the job, as it stops a local run
    outcome = entry_point_outcome(final.tags, exit_code)
    result = RunResult(final.info, experiment, plan.command.display_command, exit_code, outcome,
                       logs, job_id)  # fmt: skip
    return result


def entry_point_outcome(tags: Mapping[str, str], exit_code: int) -> Outcome:
    """The entry point's own run time, as the node measured it (`mlrun.duration_s`); none
    when it never ran (an env build failed, the job was cancelled while pending)."""
    ended = time.time()
    recorded = tags.get(DURATION_TAG, "")
    try:
        duration = max(float(recorded), 0.0)
    except ValueError:
        duration = 0.0
    return Outcome(returncode=exit_code, started=ended - duration, ended=ended)


def scheduled_run(
    plan: RunPlan,
    job: JobPlan,
    settings: Settings,
    store: Store,
    experiment: Experiment,
    key: RunKey,
) -> RunInfo:
    """The run as the submitter records it: SCHEDULED, with its params and provenance tags;
    the node-side mlrun continues it."""
    name = job.backend.name
    tags = {
        **start_tags(plan, settings),
        **git_tags(plan.source),
        RUN_KEY_TAG: key.key,
        **plan.extra_tags,
        PROJECT_BACKEND_TAG: name,
        BACKEND_TAG: name,
        **job.backend.run_tags(),
    }
    run = store.create_run(experiment, plan.run_name, settings.user, tags)
    run = store.set_run_status(run, RunStatus.SCHEDULED)
    store.log_params(run, plan.command.recorded_values())
    return run


def show_node_output(path: Path, lines: int = 20) -> None:
    """What the node itself printed: mlrun's own lines and Slurm's once the run started
    (the entry point's output is in the run's logs); everything, when mlrun never started
    there (a wrong `mlrun_command`: the job's shell says why)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return
    every = [line for line in text.splitlines() if line.strip()]
    if any(line.startswith(_NODE_STARTED) for line in every):
        every = [line for line in every if line.startswith(_NODE_PREFIXES)]
    if every[-lines:]:
        log.warning("on the node (%s):\n  %s", path, "\n  ".join(every[-lines:]))


def job_spec(
    plan: RunPlan,
    job: JobPlan,
    settings: Settings,
    store: Store,
    run: RunInfo,
    experiment: Experiment,
) -> JobSpec:
    """The snapshot, the node's command and its environment: all a job needs."""
    folder = staging_root(job.config, settings) / run.run_id
    workdir = stage_project(plan.project.directory, folder / "project")
    tracking_uri = store.child_environment(run, experiment)["MLFLOW_TRACKING_URI"]
    env = job_environment(job, settings, tracking_uri)
    return JobSpec(
        run_id=run.run_id,
        name=f"mlrun-{run.run_id}",
        argv=node_argv(plan, job.config, run, experiment, tracking_uri),
        env=env,
        workdir=workdir,
        output_log=folder / "job.out",
    )


def job_environment(job: JobPlan, settings: Settings, tracking_uri: str) -> dict[str, str]:
    """Exactly what the job's shell exports (it sees nothing else of this one)."""
    from mlrun_cli.backends.jobs import exported_environment

    names = [str(item) for item in job.config.values.get("environment", ())]
    env = exported_environment(names, settings.environ, ALWAYS_EXPORTED)
    env["MLFLOW_TRACKING_URI"] = tracking_uri
    env["PYTHONUNBUFFERED"] = "1"
    return env


def node_argv(
    plan: RunPlan, config: BackendConfig, run: RunInfo, experiment: Experiment, tracking_uri: str
) -> tuple[str, ...]:
    """mlrun on the node: the staged project (its working directory), this run, the values the
    user gave (paths already absolute), the env manager chosen here."""
    mlrun = shlex.split(config.mlrun_command) if config.mlrun_command else [
        sys.executable, "-m", "mlrun_cli"]  # fmt: skip
    argv = [*mlrun, "run", ".", "-e", plan.entry.name, "--run-id", run.run_id]
    argv += ["--experiment-id", experiment.experiment_id, "--tracking-uri", tracking_uri]
    argv += ["--env-manager", plan.env_plan.manager, "--no-digest"]
    if plan.rebuild_env:
        argv.append("--rebuild-env")
    for parameter in plan.command.parameters:
        if not parameter.from_default:
            argv += ["-P", f"{parameter.name}={parameter.value}"]
    return tuple(argv)


def staging_root(config: BackendConfig, settings: Settings) -> Path:
    if config.staging_dir:
        return Path(os.path.abspath(settings.cwd / Path(config.staging_dir).expanduser()))
    return staging_dir(settings.environ)


def stage_project(source: Path, target: Path) -> Path:
    """A copy of the project the node can read, taken now: later edits do not reach the job."""
    shutil.copytree(source, target, symlinks=True, ignore=shutil.ignore_patterns(*_NOT_STAGED))
    return target
