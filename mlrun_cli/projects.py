"""`mlflow.projects.run` for mlrun: change the import, keep the call.

`run()` takes MLflow's arguments with their names, meanings and defaults, plus mlrun's own
(`reuse`, `tracking_uri`, `echo`), and returns a `SubmittedRun` as MLflow's does. It goes
through the same plan and pipeline as `mlrun run`: a bad input raises the typed error (from
`mlrun_cli.errors`) with the message the CLI prints, before anything is written.

A local run (here, or in docker here) started with `synchronous=False` runs in a thread of
this process; its entry point runs under the group supervisor, so a host that dies (even by
SIGKILL) takes the entry point with it. Runs still going when the host exits (Ctrl-C that
nobody caught) are cancelled and end KILLED. A run submitted to Slurm or Ray is followed
through its engine, as `mlrun runs wait | cancel` do.

Nothing is printed unless asked: mlrun's messages go to the `mlrun_cli` logger (silent until
the host configures logging), the entry point's output to the run's logs, and also to this
process's stdout/stderr with `echo=True`.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, Any, cast

from mlrun_cli.backends.streams import StopRequest
from mlrun_cli.core.settings import Settings
from mlrun_cli.errors import MlrunError, RunFailedError, UsageError
from mlrun_cli.jobs.control import cancel_run, wait_runs
from mlrun_cli.jobs.dispatch import execute
from mlrun_cli.run.pipeline import RunOutput, RunResult, plan_run
from mlrun_cli.run.plan import RunPlan, RunRequest
from mlrun_cli.run.run_key import Reuse, RunKey, reuse_earlier, reuse_mode
from mlrun_cli.tracking.entities import FINAL_STATUSES, RunInfo, RunStatus
from mlrun_cli.tracking.store import open_store

__all__ = ["SubmittedRun", "run"]

log = logging.getLogger(__name__)
logging.getLogger("mlrun_cli").addHandler(logging.NullHandler())

_FINAL_NAMES = frozenset(status.name for status in FINAL_STATUSES)
_JOIN_SECONDS = 0.1  # a waiting main thread still gets Ctrl-C between short joins
_EXIT_GRACE_SECONDS = 30.0  # how long an exiting host waits for its cancelled runs to end


def run(
    uri: str | os.PathLike[str],
    entry_point: str = "main",
    version: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    docker_args: Mapping[str, Any] | None = None,
    experiment_name: str | None = None,
    experiment_id: str | None = None,
    backend: str = "local",
    backend_config: Mapping[str, Any] | str | None = None,
    storage_dir: str | None = None,
    synchronous: bool = True,
    run_id: str | None = None,
    run_name: str | None = None,
    env_manager: str | None = None,
    build_image: bool = False,
    docker_auth: Mapping[str, Any] | None = None,
    *,
    reuse: bool | str | None = None,
    tracking_uri: str | None = None,
    echo: bool = False,
) -> SubmittedRun:
    """Run an entry point of the project at `uri` and record it, as `mlflow.projects.run`.

    `synchronous=True` waits and raises `RunFailedError` when the run does not finish;
    `synchronous=False` returns at once (the run exists) with a `SubmittedRun` to `wait()`
    on, `get_status()` or `cancel()`. `reuse` (True or "skip", "record"; default: MLRUN_REUSE)
    returns an identical earlier FINISHED run instead of running again. `tracking_uri`
    defaults to MLFLOW_TRACKING_URI, else ./mlruns. `echo` shows the entry point's output.
    """
    if docker_auth is not None:
        raise UsageError(
            "docker_auth is not supported by mlrun; log in with `docker login` before the run"
        )
    uri = os.fspath(uri) if isinstance(uri, os.PathLike) else uri
    _check_texts(uri=uri, entry_point=entry_point, version=version,
                 experiment_name=experiment_name, experiment_id=experiment_id,
                 storage_dir=storage_dir, run_id=run_id, run_name=run_name,
                 env_manager=env_manager, tracking_uri=tracking_uri)  # fmt: skip
    settings = _settings(tracking_uri)
    request = RunRequest(
        uri=uri,
        entry_point=entry_point,
        parameters=_assignments(parameters),
        env_manager=env_manager,
        experiment_name=experiment_name,
        experiment_id=experiment_id,
        run_name=run_name,
        version=version,
        build_image=build_image,
        docker_args=_docker_args(docker_args),
        backend=_backend(backend),
        backend_config=_backend_config(backend_config),
        detach=not synchronous and _is_job(backend),
        run_id=run_id,
        storage_dir=storage_dir,
    )
    plan = plan_run(request, settings)
    key, reused = _reuse(plan, settings, reuse)
    if reused is not None:
        return _reused_run(reused, settings)
    output = _output(echo)
    if synchronous:
        return _finished(execute(plan, settings, output, key), settings)
    if plan.job is not None:
        result = execute(plan, settings, output, key)
        return SubmittedRun(result.run.run_id, settings)
    return _start_thread(plan, settings, output, key)


class SubmittedRun:
    """A run started by `run()`: MLflow's SubmittedRun (`run_id`, `wait`, `get_status`,
    `cancel`) over mlrun's store and engines."""

    def __init__(self, run_id: str, settings: Settings, local: _LocalRun | None = None) -> None:
        self._run_id = run_id
        self._settings = settings
        self._local = local

    @property
    def run_id(self) -> str:
        return self._run_id

    def wait(self) -> bool:
        """Block until the run ends; True when it FINISHED."""
        if self._local is not None:
            self._local.join()
        else:
            wait_runs(self._settings, [self._run_id])
        return self.get_status() == RunStatus.FINISHED.name

    def get_status(self) -> str:
        """MLflow's status name: SCHEDULED, RUNNING, FINISHED, FAILED or KILLED."""
        return open_store(self._settings).get_run(self._run_id).info.status.name

    def cancel(self) -> None:
        """Stop the run and wait until it is recorded as ended (KILLED, unless it ended first).
        A run that already ended is left as it is; a local run still building its environment
        stops as soon as the build is done."""
        if self._local is not None:
            self._local.cancel()
            return
        try:
            cancel_run(self._settings, self._run_id)
        except UsageError:
            if self.get_status() not in _FINAL_NAMES:
                raise  # not a run that ended meanwhile: say why it cannot be cancelled

    def __repr__(self) -> str:
        return f"SubmittedRun(run_id={self._run_id!r})"


@dataclass(eq=False)
class _LocalRun:
    """One asynchronous run on this host: the thread that runs the pipeline, and the stop
    request that its backend polls (what `cancel()` sets)."""

    thread: threading.Thread
    output: RunOutput
    created: threading.Event = field(default_factory=threading.Event)
    info: RunInfo | None = None
    error: BaseException | None = None

    def join(self) -> None:
        while self.thread.is_alive():
            self.thread.join(_JOIN_SECONDS)

    def cancel(self) -> None:
        if self.output.stop is not None and self.thread.is_alive():
            self.output.stop.handle(signal.SIGTERM, None)
        self.join()


_active: set[_LocalRun] = set()
_active_lock = threading.Lock()


def _start_thread(
    plan: RunPlan, settings: Settings, output: RunOutput, key: RunKey | None
) -> SubmittedRun:
    """Start the pipeline in a thread; return once the run exists (or raise why it could not
    be created: the store, the experiment)."""
    holder: list[_LocalRun] = []

    def created(info: RunInfo) -> None:
        holder[0].info = info
        holder[0].created.set()

    def work() -> None:
        local = holder[0]
        try:
            execute(plan, settings, local.output, key)
        except BaseException as exc:
            local.error = exc
            log.warning("run %s: %s", local.info.run_id if local.info else "-", exc)
        finally:
            local.created.set()
            with _active_lock:
                _active.discard(local)

    output = RunOutput(output.stdout, output.stderr, output.progress, StopRequest(), created)
    local = _LocalRun(threading.Thread(target=work, name="mlrun-run", daemon=True), output)
    holder.append(local)
    with _active_lock:
        _active.add(local)
    local.thread.start()
    while not local.created.wait(_JOIN_SECONDS):
        pass
    if local.info is None:
        local.join()
        raise local.error or MlrunError("the run could not be created")
    return SubmittedRun(local.info.run_id, settings, local)


def _cancel_active() -> None:
    """At the host's exit: what is still running ends KILLED, not RUNNING forever."""
    with _active_lock:
        running = list(_active)
    for local in running:
        if local.output.stop is not None:
            local.output.stop.handle(signal.SIGTERM, None)
    for local in running:
        local.thread.join(_EXIT_GRACE_SECONDS)


atexit.register(_cancel_active)


def _finished(result: RunResult, settings: Settings) -> SubmittedRun:
    """A synchronous run's end, as MLflow reports it: Ctrl-C goes on as KeyboardInterrupt,
    a run that did not finish raises."""
    status = result.run.status
    if status == RunStatus.KILLED and result.outcome.interrupted_by is not None:
        raise KeyboardInterrupt
    if status != RunStatus.FINISHED:
        raise RunFailedError(result.run.run_id, status.name)
    return SubmittedRun(result.run.run_id, settings)


def _reused_run(reused: Reuse, settings: Settings) -> SubmittedRun:
    earlier = reused.earlier.info.run_id
    recorded = reused.recorded.run_id if reused.recorded is not None else None
    log.info("identical to FINISHED run %s; not run again", earlier)
    return SubmittedRun(recorded or earlier, settings)


def _reuse(
    plan: RunPlan, settings: Settings, reuse: bool | str | None
) -> tuple[RunKey | None, Reuse | None]:
    if reuse is False:
        return None, None
    if reuse is not None and reuse is not True and reuse not in ("skip", "record"):
        raise UsageError(f"reuse={reuse!r}: use True (or 'skip'), 'record' or False")
    option = "skip" if reuse is True else (reuse if isinstance(reuse, str) else None)
    mode = reuse_mode(option, settings.environ)
    if mode is None:
        return None, None
    return reuse_earlier(plan, settings, mode)


def _settings(tracking_uri: str | None) -> Settings:
    """The CLI's settings; inside `mlflow.start_run()` of this host, the active run becomes
    the parent (as MLFLOW_RUN_ID does inside an entry point)."""
    settings = Settings.resolve(tracking_uri)
    parent = _active_mlflow_run()
    if parent is None:
        return settings
    return Settings(
        settings.cwd, {**settings.environ, "MLFLOW_RUN_ID": parent}, settings.tracking_uri,
        settings.user,
    )  # fmt: skip


def _active_mlflow_run() -> str | None:
    """The run of `mlflow.start_run()` in this thread, when the host uses MLflow (never
    imported here for this: a host without it has no active run)."""
    mlflow = sys.modules.get("mlflow")
    active_run = getattr(mlflow, "active_run", None)
    if active_run is None:
        return None
    active = active_run()
    return None if active is None else str(active.info.run_id)


def _check_texts(**values: object) -> None:
    """A wrong type is a one-line usage error here, not a traceback from deep below."""
    for name, value in values.items():
        optional = name not in ("uri", "entry_point")
        if not isinstance(value, str) and not (optional and value is None):
            raise UsageError(f"{name} must be a str, not {type(value).__name__}")


def _assignments(parameters: Mapping[str, Any] | None) -> tuple[str, ...]:
    """MLflow's `parameters` dict as the CLI's `-P NAME=VALUE` items (values as str())."""
    if parameters is None:
        return ()
    if not isinstance(parameters, Mapping):
        raise UsageError(
            f"parameters must be a dict of name -> value, not {type(parameters).__name__}"
        )
    items = []
    for name, value in parameters.items():
        if not isinstance(name, str):
            raise UsageError(f"parameters: the name {name!r} is not a str")
        items.append(f"{name}={value}")
    return tuple(items)


def _docker_args(docker_args: Mapping[str, Any] | None) -> tuple[tuple[str, str], ...]:
    """MLflow's `{"network": "host", "privileged": True}` as `-A` pairs (True: a bare flag)."""
    if docker_args is None:
        return ()
    if not isinstance(docker_args, Mapping):
        raise UsageError(
            f"docker_args must be a dict of option -> value, not {type(docker_args).__name__}"
        )
    pairs = []
    for key, value in docker_args.items():
        if value is False or value is None:
            continue
        pairs.append((str(key), "" if value is True else str(value)))
    return tuple(pairs)


def _backend(backend: str | None) -> str | None:
    """MLflow's default "local" is mlrun's "run here" (docker for a docker_env project)."""
    if backend is not None and not isinstance(backend, str):
        raise UsageError(f"backend must be a str, not {type(backend).__name__}")
    return None if backend in (None, "local") else backend


def _is_job(backend: str | None) -> bool:
    from mlrun_cli.backends import JOB_BACKENDS

    return backend in JOB_BACKENDS


def _backend_config(config: Mapping[str, Any] | str | None) -> str | None:
    """A dict (as MLflow takes it), or a file's path or inline JSON (as the CLI does)."""
    if config is None or isinstance(config, str):
        return config
    if isinstance(config, Mapping):
        return json.dumps(dict(config))
    raise UsageError(f"backend_config must be a dict or a file's path, not {type(config).__name__}")


def _output(echo: bool) -> RunOutput:
    if not echo:
        return RunOutput()
    return RunOutput(_binary(sys.stdout), _binary(sys.stderr))


def _binary(stream: IO[str]) -> IO[bytes]:
    """The stream's bytes side; a notebook's text-only stream gets the output decoded."""
    buffer = getattr(stream, "buffer", None)
    if buffer is not None:
        return cast(IO[bytes], buffer)
    return cast(IO[bytes], _TextSink(stream))


class _TextSink:
    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def write(self, data: bytes) -> int:
        return self._stream.write(data.decode(errors="replace"))

    def flush(self) -> None:
        self._stream.flush()
