"""`mlrun runs wait | logs | cancel` and the engine half of `runs gc`, for runs on any backend.

A run that ran here has no engine: waiting watches its status (and gives up when its runner
is gone), cancelling is refused. A submitted run is found in its engine by its tags.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO

from mlrun_cli.backends import JOB_BACKENDS
from mlrun_cli.backends.jobs import (
    EngineUnreachable,
    JobBackend,
    backend_for_run,
    job_id_tag,
)
from mlrun_cli.core.settings import Settings
from mlrun_cli.errors import LaunchError, UsageError
from mlrun_cli.jobs.follow import (
    correct_killed,
    exit_code_of,
    final_exit_code,
    follow_run,
    settle,
)
from mlrun_cli.jobs.reconcile import report_unreachable, wait_reachable_or_settled
from mlrun_cli.run.finish import finish_run
from mlrun_cli.run.runner_identity import runner_alive
from mlrun_cli.tracking.entities import FINAL_STATUSES, RunStatus
from mlrun_cli.tracking.store import RecordedRun, Store, existing_store, find_run
from mlrun_cli.tracking.tags import BACKEND_TAG, STATE_TAG

CANCEL_DEADLINE_SECONDS = 60.0


@dataclass(frozen=True)
class Waited:
    run: RecordedRun
    exit_code: int


def wait_runs(settings: Settings, prefixes: Sequence[str]) -> list[Waited]:
    """Each run to its end, in the order given; the same exit code `mlrun run` gave."""
    store = existing_store(settings)
    runs = [find_run(store, prefix) for prefix in prefixes]
    return [_wait_one(store, settings, run) for run in runs]


def _wait_one(store: Store, settings: Settings, run: RecordedRun) -> Waited:
    backend = backend_for_run(run.tags, settings.environ)
    if backend is not None:
        job_id = run.tags[job_id_tag(backend.name)]
        run = follow_run(store, run.info.run_id, backend, job_id)
        return Waited(run, final_exit_code(run, backend, job_id))
    while run.info.status not in FINAL_STATUSES and runner_alive(dict(run.tags)) is not False:
        time.sleep(0.2)
        run = store.get_run(run.info.run_id)
    return Waited(run, exit_code_of(run.info.status, run.tags))


def follow_logs(
    settings: Settings, prefix: str, follow: bool, stdout: IO[bytes], stderr: IO[bytes]
) -> RecordedRun:
    """The run's captured output; with `follow`, what is appended until the run ends."""
    store = existing_store(settings)
    run = find_run(store, prefix)
    backend = backend_for_run(run.tags, settings.environ) if follow else None
    job_id = run.tags.get(job_id_tag(backend.name)) if backend is not None else None
    gone = None if follow else time.monotonic()
    return follow_run(store, run.info.run_id, backend, job_id, stdout, stderr, gone)


def cancel_run(settings: Settings, prefix: str) -> RecordedRun:
    """Cancel the run's job and wait until the run is KILLED (or ended otherwise first)."""
    store = existing_store(settings)
    run = find_run(store, prefix)
    backend = backend_for_run(run.tags, settings.environ)
    if backend is None:
        raise UsageError(
            f"run {run.info.run_id} ran on this machine, not as a job; stop it with Ctrl-C "
            "where it runs (or `mlrun runs gc` once its process is gone)"
        )
    if run.info.status in FINAL_STATUSES:
        raise UsageError(f"run {run.info.run_id} is already {run.info.status.name}")
    job_id = run.tags[job_id_tag(backend.name)]
    try:
        backend.cancel(job_id)
    except EngineUnreachable:
        run = wait_reachable_or_settled(store, run, backend, job_id)
        if run.info.status in FINAL_STATUSES:
            return run
        backend.cancel(job_id)
    deadline = time.monotonic() + CANCEL_DEADLINE_SECONDS
    while run.info.status not in FINAL_STATUSES or not _job_over(backend, job_id):
        if time.monotonic() >= deadline:
            raise LaunchError(
                f"{backend.name} did not end job {job_id} within {CANCEL_DEADLINE_SECONDS:.0f}s; "
                "the run stays as it is (`mlrun runs gc` will settle it)"
            )
        time.sleep(0.2)
        run = settle(store, store.get_run(run.info.run_id), backend, job_id)
    if run.info.status == RunStatus.KILLED:
        run = correct_killed(store, run, backend, job_id)
    return run


def _job_over(backend: JobBackend, job_id: str) -> bool:
    state = backend.state(job_id)
    return state is None or state.final


def reconcile_jobs(settings: Settings) -> list[RecordedRun]:
    """`runs gc` for submitted runs: the unfinished ones whose job ended unrecorded, and the
    ones the node marked KILLED that the engine says failed (time limit, out of memory)."""
    store = existing_store(settings)
    experiments = [e.experiment_id for e in store.list_experiments("all")]
    changed = []
    for run in store.stored_runs(experiments, "all"):
        status = run.info.status
        if run.tags.get(BACKEND_TAG) not in JOB_BACKENDS or STATE_TAG in run.tags:
            continue
        if status == RunStatus.FINISHED or status == RunStatus.FAILED:
            continue
        backend = backend_for_run(run.tags, settings.environ)
        if backend is None:
            finish_run(store, run.info, RunStatus.FAILED)
            continue
        job_id = run.tags[job_id_tag(backend.name)]
        try:
            if status == RunStatus.KILLED:
                after = correct_killed(store, run, backend, job_id, timeout=0.0)
            else:
                after = settle(store, run, backend, job_id)
        except LaunchError:
            continue  # the engine cannot be reached from here; another gc will settle it
        if after.info.status != status:
            changed.append(after)
        else:
            report_unreachable(store, after)
    return changed
