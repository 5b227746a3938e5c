"""`mlrun sweep`: one entry point over a grid of parameter values, as a parent run and children.

    grid -> every point planned and type-checked (nothing written)
         -> run cache lookup (--reuse) -> parent run (tag mlrun.sweep, the grid as a param)
         -> env prepared once -> children through a scheduler (each the ordinary pipeline,
            tagged mlflow.parentRunId) -> parent status -> the children's table

Where the children run is the scheduler's business (schedulers.py): threads on this machine
(threads.py), or one Slurm job array (slurm_arrays.py: no env is prepared here, the nodes do it).
Children that write the same output (an output `path` parameter naming the same file, or one
inside another's folder) never run at the same time: each child's output digest is taken after
it ends, and must be of what that child wrote, not of a sibling's file.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from mlrun_cli.backends.streams import StopRequest
from mlrun_cli.core.settings import Settings
from mlrun_cli.envs import BuildProgress, PreparedEnv
from mlrun_cli.errors import EnvBuildError, MlrunError, ParameterError, StoreError, UsageError
from mlrun_cli.jobs.dispatch import execute
from mlrun_cli.project.params import ResolvedCommand, resolve_command
from mlrun_cli.run.earlier_outputs import EarlierOutputs, mark_outputs, read_earlier_outputs
from mlrun_cli.run.finish import finish_run
from mlrun_cli.run.interrupts import interrupted_exit_code
from mlrun_cli.run.pipeline import RunOutput, experiment_for, plan_run
from mlrun_cli.run.plan import RunPlan
from mlrun_cli.run.provenance import git_tags, record_git_diff
from mlrun_cli.run.run_key import (
    KeyMemo,
    RunKey,
    compute_run_key,
    existing_experiment,
    identical_runs,
    record_reuse,
)
from mlrun_cli.run.runner_identity import runner_tags
from mlrun_cli.sweeps.batch import Launch, StopAll, SweepBatch
from mlrun_cli.sweeps.grid import parse_grid
from mlrun_cli.sweeps.plan import (
    SweepOutput,
    SweepPlan,
    SweepPoint,
    SweepRequest,
    child_tags,
    label,
    shared_outputs,
)
from mlrun_cli.sweeps.prefixed_output import PrefixedLines
from mlrun_cli.sweeps.schedulers import scheduler_for
from mlrun_cli.tracking import artifacts
from mlrun_cli.tracking.entities import Experiment, RunInfo, RunStatus
from mlrun_cli.tracking.search import METRIC, PARAM, OrderBy, parse_order_by
from mlrun_cli.tracking.store import RecordedRun, Store, open_store, runs_tagged
from mlrun_cli.tracking.tags import (
    ENTRY_POINT_TAG,
    ENV_KEY_TAG,
    GRID_PARAM,
    INDEX_TAG,
    PARENT_TAG,
    PROJECT_BACKEND_TAG,
    PROJECT_ENV_TAG,
    REUSED_FROM_TAG,
    RUN_KEY_TAG,
    SOURCE_TAG,
    SOURCE_TYPE_TAG,
    SWEEP_TAG,
    USER_TAG,
)

log = logging.getLogger(__name__)
NOT_STARTED = "NOT_STARTED"
SUMMARY_FORMAT = 1


@dataclass(frozen=True)
class SweepRow:
    index: int
    values: Mapping[str, str]
    status: str  # a run status, or NOT_STARTED (after --fail-fast or Ctrl-C)
    run_id: str | None = None
    duration: float | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    reused_from: str | None = None

    def as_json(self) -> dict[str, object]:
        return {
            "index": self.index,
            "params": dict(self.values),
            "status": self.status,
            "run_id": self.run_id,
            "duration_seconds": None if self.duration is None else round(self.duration, 3),
            "metrics": dict(self.metrics),
            "reused_from": self.reused_from,
        }


@dataclass(frozen=True)
class SweepResult:
    parent_run_id: str | None  # None when every point was an earlier run (--reuse)
    status: RunStatus
    experiment_id: str | None
    rows: tuple[SweepRow, ...]
    varying: tuple[str, ...]
    metrics: tuple[str, ...]
    executed: int
    exit_code: int

    def as_json(self) -> dict[str, object]:
        return {
            "parent_run_id": self.parent_run_id,
            "status": self.status.name,
            "experiment_id": self.experiment_id,
            "exit_code": self.exit_code,
            "executed": self.executed,
            "varying": list(self.varying),
            "children": [row.as_json() for row in self.rows],
        }


# -- planning ------------------------------------------------------------------------------


def plan_sweep(request: SweepRequest, settings: Settings) -> SweepPlan:
    """Every check for every point, before anything is written."""
    if request.jobs < 1:
        raise UsageError(f"-j {request.jobs}: run at least one child at a time")
    scheduler_for(request.backend)  # an unknown or unsupported backend fails here
    if request.reuse is not None and not request.run.digest_inputs:
        raise UsageError("--reuse needs the input digests; drop --no-digest")
    order = _order(request.order_by)
    grid = parse_grid(request.run.parameters, settings.cwd, request.zipped, request.max_runs)
    values = grid.points()
    first = [f"{name}={value}" for name, value in values[0].items()]
    base = plan_run(replace(request.run, parameters=first, backend=request.backend), settings)
    commands = resolve_points(base, values, settings, request.run.secret_params)
    points = tuple(
        SweepPoint(
            index, point, replace(base, command=command, run_name=f"{base.run_name}-{index}")
        )
        for index, (point, command) in enumerate(zip(values, commands, strict=True), start=1)
    )
    return SweepPlan(
        base=base,
        grid=grid,
        points=points,
        backend=request.backend,
        jobs=min(request.jobs, len(points)),
        fail_fast=request.fail_fast,
        reuse=request.reuse,
        metrics=tuple(request.metrics),
        order=order,
        shared=shared_outputs({p.index: p.plan.command.parameters for p in points}, settings.cwd),
    )


def _order(text: str | None) -> OrderBy | None:
    if text is None:
        return None
    order = parse_order_by(text)
    if order.entity not in (METRIC, PARAM):
        raise UsageError(f"--order-by {text}: sort the children by metrics.NAME or params.NAME")
    return order


def resolve_points(
    base: RunPlan,
    points: list[dict[str, str]],
    settings: Settings,
    secrets: Sequence[str],
    earlier: EarlierOutputs | None = None,
) -> list[ResolvedCommand]:
    """Each point's values against their declared types; every bad value reported at once.
    `earlier`: the project's recorded outputs when the caller read them already."""
    commands: list[ResolvedCommand] = []
    problems: dict[str, None] = {}  # ordered and without repeats
    if earlier is None:
        earlier = read_earlier_outputs(base.source.source_name, settings)
    for index, point in enumerate(points, start=1):
        try:
            command = resolve_command(
                base.entry, point, settings.cwd, base.project.directory, secret_names=secrets
            )
        except ParameterError as exc:
            for line in exc.lines():
                problems.setdefault(f"point {index} ({label(point)}): {line}")
            continue
        command = mark_outputs(command, base.entry.name, earlier)
        commands.append(command.relocated(base.env_plan.path_map))
    if problems:
        raise ParameterError("\n".join(problems))
    return commands


# -- execution -----------------------------------------------------------------------------


def execute_sweep(plan: SweepPlan, settings: Settings, output: SweepOutput) -> SweepResult:
    """Reuse what was run before (--reuse), run the rest under a parent, and list them all."""
    store = open_store(settings)
    memo = KeyMemo()
    keys = {p.index: compute_run_key(p.plan, memo) for p in plan.points}
    earlier = _earlier_runs(store, plan, keys)
    to_run = [p for p in plan.points if keys[p.index].key not in earlier]
    if plan.reuse == "skip" and not to_run:
        log.info("all %d points were run before; nothing to do (--reuse)", len(plan.points))
        rows = [_reused_row(p, earlier[keys[p.index].key]) for p in plan.points]
        return _result(plan, None, RunStatus.FINISHED, None, rows, 0, 0)
    experiment = experiment_for(store, plan.base)
    parent = _create_parent(store, experiment, plan, settings)
    stop = StopAll()
    try:  # from its creation on, whatever stops the sweep (Ctrl-C, a lost store) ends the parent
        statuses = _run_points(plan, to_run, parent, experiment, store, keys, earlier, settings,
                               output, stop)  # fmt: skip
    except BaseException as exc:
        killed = isinstance(exc, KeyboardInterrupt)
        finish_run(store, parent, RunStatus.KILLED if killed else RunStatus.FAILED)
        raise
    status, exit_code = _parent_status(stop, statuses, len(to_run))
    try:  # whatever stops the listing (a lost server, Ctrl-C), the parent ends
        try:
            rows = _rows(store, experiment, parent, plan, earlier if plan.reuse == "skip" else {},
                         keys)  # fmt: skip
        except StoreError as exc:
            finished = sum(s == RunStatus.FINISHED for s in statuses.values())
            raise StoreError(
                f"sweep {parent.run_id} ended {status.name} ({finished} of {len(to_run)} runs "
                f"FINISHED), but its runs cannot be listed: {exc.message}"
            ) from None
        result = _result(plan, parent.run_id, status, experiment.experiment_id, rows,
                         len(statuses), exit_code)  # fmt: skip
        write_summary(store, parent, result)
    finally:
        finish_run(store, parent, status)
    return result


def _run_points(
    plan: SweepPlan,
    to_run: list[SweepPoint],
    parent: RunInfo,
    experiment: Experiment,
    store: Store,
    keys: dict[int, RunKey],
    earlier: dict[str, RecordedRun],
    settings: Settings,
    output: SweepOutput,
    stop: StopAll,
) -> dict[int, RunStatus]:
    """Record the reused points (--reuse=record) and run the others under `parent`."""
    log.info(
        "sweep %s (%s): %d runs, %d at a time", parent.run_id, parent.run_name,
        len(plan.points), plan.jobs,
    )  # fmt: skip
    if plan.reuse == "record":
        for point in plan.points:
            if (found := earlier.get(keys[point.index].key)) is not None:
                tags = {**child_tags(parent, point), RUN_KEY_TAG: keys[point.index].key}
                record_reuse(store, experiment, found, point.plan, settings.user, tags)
    shared = plan.shared.among({p.index for p in to_run})
    if shared.groups and plan.jobs > 1:
        log.info("%s", shared.message())
    plan = replace(plan, shared=shared)
    if not to_run:
        return {}
    batch = SweepBatch(
        plan, to_run, parent, experiment, store, keys, settings, output, stop,
        launcher=lambda: _launcher(
            plan, parent, prepare_shared_env(store, parent, plan.base, output.progress), keys,
            settings, output,
        ),
    )  # fmt: skip
    return scheduler_for(plan.backend).run(batch)


def write_summary(store: Store, parent: RunInfo, result: SweepResult) -> None:
    """The parent's record: the sweep as `mlrun sweep --json` prints it (its children, their
    status, params and metrics), kept with the parent wherever the store keeps artifacts."""
    document = {"format": SUMMARY_FORMAT, "sweep": result.as_json()}
    store.write_artifact(parent, artifacts.SWEEP_SUMMARY, json.dumps(document, indent=2))


def _earlier_runs(
    store: Store, plan: SweepPlan, keys: Mapping[int, RunKey]
) -> dict[str, RecordedRun]:
    if plan.reuse is None:
        return {}
    experiment = existing_experiment(store, plan.base)
    if experiment is None:
        return {}
    return identical_runs(store, experiment.experiment_id, {k.key for k in keys.values()})


def parent_tags(base: RunPlan, user: str, backend: str, kind: str) -> dict[str, str]:
    """The tags of a sweep's or a search's parent: MLflow's for the project (its UI shows
    them), the code's git state, the runner's identity (for gc), and the kind of sweep."""
    return {
        USER_TAG: user,
        SOURCE_TAG: base.source.source_name,
        SOURCE_TYPE_TAG: "PROJECT",
        ENTRY_POINT_TAG: base.entry.name,
        PROJECT_ENV_TAG: base.env_plan.manager,
        PROJECT_BACKEND_TAG: backend,
        SWEEP_TAG: kind,
        **git_tags(base.source),
        **runner_tags(),
    }


def _create_parent(
    store: Store, experiment: Experiment, plan: SweepPlan, settings: Settings
) -> RunInfo:
    base = plan.base
    kind = "zip" if plan.grid.zipped else "product"
    tags = parent_tags(base, settings.user, plan.backend, kind)
    parent = store.create_run(experiment, base.run_name, settings.user, tags)
    record_git_diff(store, parent, base.source)
    store.log_params(parent, {GRID_PARAM: json.dumps(plan.grid.as_json(), sort_keys=True)})
    return parent


def prepare_shared_env(
    store: Store, parent: RunInfo, base: RunPlan, progress: BuildProgress
) -> PreparedEnv:
    """Built (or found) once for all children; a failure ends the parent (in execute_sweep)
    before any child starts, with the build log kept."""
    try:
        prepared = base.manager.prepare(base.env_plan, progress, base.rebuild_env)
    except EnvBuildError as exc:
        if exc.log_path is not None:
            store.add_artifact(parent, exc.log_path, artifacts.BUILD_LOG)
        raise
    if prepared.build_log is not None:
        store.add_artifact(parent, prepared.build_log, artifacts.BUILD_LOG)
    if prepared.key:
        store.set_tags(parent, {ENV_KEY_TAG: prepared.key})
    return replace(prepared, build_log=None)  # the build log belongs to the parent only


def _launcher(
    plan: SweepPlan,
    parent: RunInfo,
    prepared: PreparedEnv,
    keys: Mapping[int, RunKey],
    settings: Settings,
    output: SweepOutput,
) -> Launch:
    lock = threading.Lock()
    points = {p.index: p for p in plan.points}

    def launch(index: int, stop: StopRequest) -> RunStatus:
        run = run_point(points[index], parent, prepared, keys[index], settings, output, lock, stop)
        return RunStatus.FAILED if run is None else run.status

    return launch


def run_point(
    point: SweepPoint,
    parent: RunInfo,
    prepared: PreparedEnv | None,
    key: RunKey,
    settings: Settings,
    output: SweepOutput,
    lock: threading.Lock,
    stop: StopRequest,
    created: Callable[[RunInfo], None] | None = None,
) -> RunInfo | None:
    """One child through the ordinary pipeline, its echo prefixed with its number; the
    child's run as it ended, or None when it failed before it could say which run it was
    (its run, if one was made, is already recorded as FAILED). `created` is told the child's
    run as soon as it exists."""
    child = replace(point.plan, prepared_env=prepared, extra_tags=child_tags(parent, point))
    prefix = f"[{point.index}] "
    streams = [
        PrefixedLines(target, prefix, lock) if target is not None else None
        for target in (output.stdout, output.stderr)
    ]
    echo = [s.as_stream() if s is not None else None for s in streams]
    try:
        echoed = RunOutput(echo[0], echo[1], stop=stop, created=created)
        result = execute(child, settings, echoed, key)
    except MlrunError as exc:
        log.warning("%s%s: %s", prefix, label(point.values), exc.message)
        return None
    finally:
        for stream in streams:
            if stream is not None:
                stream.finish()
    run = result.run
    log.info(
        "%s%s: run %s %s in %.2fs", prefix, label(point.values), run.run_id,
        run.status.name, result.outcome.duration,
    )  # fmt: skip
    return run


def _parent_status(
    stop: StopRequest, statuses: Mapping[int, RunStatus], planned: int
) -> tuple[RunStatus, int]:
    if stop.signum is not None:
        return RunStatus.KILLED, interrupted_exit_code(stop.signum)
    if any(s != RunStatus.FINISHED for s in statuses.values()) or len(statuses) < planned:
        return RunStatus.FAILED, 1
    return RunStatus.FINISHED, 0


def _rows(
    store: Store,
    experiment: Experiment,
    parent: RunInfo,
    plan: SweepPlan,
    skipped: Mapping[str, RecordedRun],
    keys: Mapping[int, RunKey],
) -> list[SweepRow]:
    """The children as the store has them, and the earlier runs that stood in for some."""
    children = {
        r.tags.get(INDEX_TAG): r
        for r in runs_tagged(store, experiment.experiment_id, PARENT_TAG, parent.run_id)
    }
    rows = []
    for point in plan.points:
        child = children.get(str(point.index))
        if child is not None:
            rows.append(_row(point, child))
        elif (found := skipped.get(keys[point.index].key)) is not None:
            rows.append(_reused_row(point, found))
        else:
            rows.append(SweepRow(point.index, point.values, NOT_STARTED))
    return rows


def _row(point: SweepPoint, run: RecordedRun) -> SweepRow:
    return SweepRow(
        index=point.index,
        values=point.values,
        status=run.info.status.name,
        run_id=run.info.run_id,
        duration=run.duration_seconds,
        metrics=run.metrics,
        reused_from=run.tags.get(REUSED_FROM_TAG),
    )


def _reused_row(point: SweepPoint, earlier: RecordedRun) -> SweepRow:
    return replace(_row(point, earlier), reused_from=earlier.info.run_id)


def _result(
    plan: SweepPlan,
    parent_id: str | None,
    status: RunStatus,
    experiment_id: str | None,
    rows: list[SweepRow],
    executed: int,
    exit_code: int,
) -> SweepResult:
    return SweepResult(
        parent_run_id=parent_id,
        status=status,
        experiment_id=experiment_id,
        rows=tuple(_sorted(rows, plan.order)),
        varying=plan.grid.varying,
        metrics=plan.metrics,
        executed=executed,
        exit_code=exit_code,
    )


def _sorted(rows: list[SweepRow], order: OrderBy | None) -> list[SweepRow]:
    """Grid order, or by one metric or param; rows without the value always last."""
    if order is None:
        return rows

    def value(row: SweepRow) -> float | str | None:
        if order.entity == METRIC:
            number = row.metrics.get(order.key)
            return None if number is None or math.isnan(number) else number
        return row.values.get(order.key)

    present = [r for r in rows if value(r) is not None]
    missing = [r for r in rows if value(r) is None]
    present.sort(key=lambda r: _comparable(value(r)), reverse=not order.ascending)
    return present + missing


def _comparable(value: float | str | None) -> tuple[int, float, str]:
    """Numbers before text, numbers by value (params are text, often numeric)."""
    if isinstance(value, float):
        return (0, value, "")
    try:
        return (0, float(str(value)), "")
    except ValueError:
        return (1, 0.0, str(value))
