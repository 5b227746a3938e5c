"""`mlrun sweep --backend slurm`: the children as the tasks of ONE Slurm job array.

    every child created SCHEDULED (params, provenance, mlflow.parentRunId) -> the project
    staged once -> one `sbatch --array=0-(N-1)[%jobs]` whose task i runs the node-side
    `mlrun run . --run-id CHILD_i` -> every child followed to its end -> statuses

The throttle is %1 when children share an output path, so each records its own output.

A child's job id is its array task, `ARRAYID_i`, so `mlrun runs wait|logs|cancel|gc` treat it
as any submitted run. Ctrl-C, and --fail-fast after the first failed child, cancel the whole
array: the children still pending or running end KILLED.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from mlrun_cli.backends.jobs import JobPlan, JobSpec, job_id_tag
from mlrun_cli.backends.streams import handling_signals
from mlrun_cli.core.settings import Settings
from mlrun_cli.errors import UsageError
from mlrun_cli.jobs.follow import (
    ENGINE_EVERY_SECONDS,
    POLL_SECONDS,
    LogTail,
    await_record,
    correct_killed,
    log_tails,
    settle,
)
from mlrun_cli.jobs.submit import (
    job_environment,
    node_argv,
    scheduled_run,
    show_node_output,
    stage_project,
    staging_root,
)
from mlrun_cli.run.finish import finish_run
from mlrun_cli.run.interrupts import stop_signals_interrupt
from mlrun_cli.run.pipeline import record_inputs, write_run_record
from mlrun_cli.run.run_key import RunKey
from mlrun_cli.sweeps.batch import StopAll, SweepBatch
from mlrun_cli.sweeps.plan import SweepOutput, SweepPlan, SweepPoint, child_tags, label
from mlrun_cli.sweeps.prefixed_output import PrefixedLines
from mlrun_cli.tracking.entities import FINAL_STATUSES, Experiment, RunInfo, RunStatus
from mlrun_cli.tracking.store import RecordedRun, Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Task:
    point: SweepPoint
    run_id: str
    job_id: str  # ARRAYID_TASK
    output_log: Path  # what the node-side mlrun printed


class ArrayScheduler:
    """The points as the tasks of one Slurm job array; the nodes prepare the env."""

    name = "slurm"

    def run(self, batch: SweepBatch) -> dict[int, RunStatus]:
        return run_array(
            batch.plan, batch.points, batch.parent, batch.experiment, batch.store, batch.keys,
            batch.settings, batch.output, batch.stop,
        )  # fmt: skip


def run_array(
    plan: SweepPlan,
    points: Sequence[SweepPoint],
    parent: RunInfo,
    experiment: Experiment,
    store: Store,
    keys: Mapping[int, RunKey],
    settings: Settings,
    output: SweepOutput,
    stop: StopAll,
    staging: str | None = None,
) -> dict[int, RunStatus]:
    """Submit the points as one job array and follow every child to its end. `staging` names
    the array's staging folder when a parent submits several arrays (a search's batches);
    by default it is the parent's id."""
    job = plan.base.job
    if job is None:
        raise UsageError("a job array needs a job backend (--backend slurm)")
    children: list[RunInfo] = []
    with stop_signals_interrupt() as guard:
        try:
            for point in points:
                child_plan = replace(point.plan, extra_tags=child_tags(parent, point))
                guard.hold()  # a child exists whole, SCHEDULED and in `children` before a signal
                key = keys[point.index]
                children.append(scheduled_run(child_plan, job, settings, store, experiment, key))
                guard.release()
                record_inputs(child_plan, store, children[-1], key)
                write_run_record(child_plan, store, children[-1], None, None)
                store.publish(children[-1])  # before the array starts: a task stages there
            folder = staging_root(job.config, settings) / (staging or parent.run_id)
            spec = _array_spec(
                plan, points, children, job, settings, folder, store, parent, experiment
            )
            guard.hold()  # an array once submitted is cancelled by a signal, never lost
            array_id = job.backend.submit(spec)
        except BaseException as exc:
            guard.hold()
            status = RunStatus.KILLED if isinstance(exc, KeyboardInterrupt) else RunStatus.FAILED
            for child in children:
                finish_run(store, child, status)
            raise
        with handling_signals(stop):
            if guard.pending is not None:
                stop.handle(guard.pending, None)  # _follow cancels the array at once
            return _submitted(store, job, array_id, points, children, spec, plan, output, stop)


def _submitted(
    store: Store,
    job: JobPlan,
    array_id: str,
    points: Sequence[SweepPoint],
    children: Sequence[RunInfo],
    spec: JobSpec,
    plan: SweepPlan,
    output: SweepOutput,
    stop: StopAll,
) -> dict[int, RunStatus]:
    """Each child named by its task's job id, then all followed to their end."""
    parent_id = spec.run_id
    log.info("sweep %s: Slurm job array %s (%d tasks)", parent_id, array_id, len(points))
    tasks = []
    for task, (point, child) in enumerate(zip(points, children, strict=True)):
        job_id = f"{array_id}_{task}"
        store.set_tags(child, {job_id_tag(job.backend.name): job_id})
        output_log = spec.output_log.parent / f"job-{task}.out"
        tasks.append(_Task(point, child.run_id, job_id, output_log))
    return _follow(store, job, array_id, tasks, plan.fail_fast, output, stop)


def _array_spec(
    plan: SweepPlan,
    points: Sequence[SweepPoint],
    children: Sequence[RunInfo],
    job: JobPlan,
    settings: Settings,
    folder: Path,
    store: Store,
    parent: RunInfo,
    experiment: Experiment,
) -> JobSpec:
    """The project staged once into `folder`; task i runs child i."""
    workdir = stage_project(plan.base.project.directory, folder / "project")
    tracking_uri = store.child_environment(parent, experiment)["MLFLOW_TRACKING_URI"]
    commands = tuple(
        node_argv(point.plan, job.config, child, experiment, tracking_uri)
        for point, child in zip(points, children, strict=True)
    )
    return JobSpec(
        run_id=parent.run_id,
        name=f"mlrun-sweep-{parent.run_id}",
        argv=(),
        env=job_environment(job, settings, tracking_uri),
        workdir=workdir,
        output_log=folder / "job-%a.out",  # Slurm puts the task id in place of %a
        array=commands,
        throttle=_throttle(plan, len(points)),
    )


def _throttle(plan: SweepPlan, tasks: int) -> int | None:
    """-j as the array's %N; %1 when children share an output, so each records its own."""
    if plan.shared.groups:
        return 1
    return plan.jobs if plan.jobs < tasks else None


def _follow(
    store: Store,
    job: JobPlan,
    array_id: str,
    tasks: Sequence[_Task],
    fail_fast: bool,
    output: SweepOutput,
    stop: StopAll,
) -> dict[int, RunStatus]:
    """Every child to its end, its output echoed with its number in front; the engine is
    asked about each unfinished task once a second (settling a task that died unrecorded)."""
    lock = threading.Lock()
    sinks = {
        t.point.index: [
            PrefixedLines(target, f"[{t.point.index}] ", lock) if target is not None else None
            for target in (output.stdout, output.stderr)
        ]
        for t in tasks
    }
    tails: dict[int, list[LogTail]] = {
        t.point.index: log_tails(
            store,
            store.get_run(t.run_id),
            *(s.as_stream() if s is not None else None for s in sinks[t.point.index]),
        )
        for t in tasks
    }
    ended: dict[int, RunStatus] = {}
    cancelled = False
    next_engine = 0.0
    with handling_signals(stop):
        while len(ended) < len(tasks):
            failed = any(status != RunStatus.FINISHED for status in ended.values())
            if not cancelled and (stop.signum is not None or (fail_fast and failed)):
                why = "stopped" if stop.signum is not None else "--fail-fast after a failure"
                log.warning("cancelling job array %s (%s)", array_id, why)
                job.backend.cancel(array_id)
                cancelled = True
            ask_engine = time.monotonic() >= next_engine
            if ask_engine:
                next_engine = time.monotonic() + ENGINE_EVERY_SECONDS
            for task in tasks:
                if task.point.index in ended:
                    continue
                run = store.get_run(task.run_id)
                if ask_engine and run.info.status not in FINAL_STATUSES:
                    run = settle(store, run, job.backend, task.job_id)
                for tail in tails[task.point.index]:
                    tail.pump()
                if run.info.status in FINAL_STATUSES:
                    run = _ended(store, run, job, task, tails[task.point.index])
                    for sink in sinks[task.point.index]:
                        if sink is not None:
                            sink.finish()
                    ended[task.point.index] = run.info.status
            stop.take(POLL_SECONDS)
    return ended


def _ended(
    store: Store, run: RecordedRun, job: JobPlan, task: _Task, tails: Sequence[LogTail]
) -> RecordedRun:
    """A child over: its record written, its last output shown, a KILLED one checked against
    the engine (a time limit is a failure), a failed one's node-side mlrun lines shown."""
    from mlrun_cli.tracking.tags import STATE_TAG

    if STATE_TAG not in run.tags:
        await_record(store, run)
    for tail in tails:
        tail.pump()
    if run.info.status == RunStatus.KILLED:
        run = correct_killed(store, run, job.backend, task.job_id)
    if run.info.status == RunStatus.FAILED:
        show_node_output(task.output_log)
    log.info(
        "[%d] %s: run %s %s (job %s)", task.point.index, label(task.point.values),
        run.info.run_id, run.info.status.name, task.job_id,
    )  # fmt: skip
    return run
