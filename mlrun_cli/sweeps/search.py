"""`mlrun sweep --search`: the sampler chooses each trial from the results so far.

    plan (search_plan.py) -> parent run (mlrun.sweep = search, the definition as a param)
        -> env prepared once -> ask a trial -> run it as a child (the ordinary pipeline)
        -> tell its objective, read from the child's metrics -> ... -> best trial on the parent

At most `-j` trials run at once; a new one is asked as soon as one ends (here, or each as a
Ray job followed from here); on Slurm `-j` trials are asked at a time and run as one job array
(search_arrays.py). How a child is told:
FINISHED with a finite last value of the objective: that value (COMPLETE); FINISHED without it,
FAILED, or KILLED by someone else: FAIL (the search goes on); KILLED by Ctrl-C: not told, and
`--resume` runs its point again. The told state is the child's tag `mlrun.search.state`, so a
resumed search rebuilds the study from the children alone.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from mlrun_cli.core.settings import Settings
from mlrun_cli.run.finish import finish_run
from mlrun_cli.run.interrupts import interrupted_exit_code
from mlrun_cli.run.pipeline import experiment_for
from mlrun_cli.run.provenance import record_git_diff
from mlrun_cli.run.runner_identity import runner_tags
from mlrun_cli.sweeps.batch import StopAll
from mlrun_cli.sweeps.plan import SweepOutput
from mlrun_cli.sweeps.search_arrays import run_batches
from mlrun_cli.sweeps.search_plan import SearchPlan
from mlrun_cli.sweeps.study import COMPLETE, PRUNED, RecordedTrial, Study
from mlrun_cli.sweeps.sweep import parent_tags, prepare_shared_env
from mlrun_cli.sweeps.trials import Progress, TrialUpdate, improves, outcome, run_trials
from mlrun_cli.tracking.entities import Experiment, RunInfo, RunStatus
from mlrun_cli.tracking.store import RecordedRun, Store, open_store, runs_tagged
from mlrun_cli.tracking.tags import (
    INDEX_TAG,
    PARENT_TAG,
    PRUNED_TAG,
    SEARCH_PARAM,
    TRIAL_STATE_TAG,
)

log = logging.getLogger(__name__)
SEARCH = "search"  # the parent's mlrun.sweep tag


@dataclass(frozen=True)
class TrialRow:
    index: int  # 1-based, in the order the trials were asked
    params: Mapping[str, str]  # the searched parameters
    status: str  # the child's run status
    state: str | None  # as told: COMPLETE, FAIL, PRUNED; None when not told (interrupted)
    value: float | None
    run_id: str | None
    duration: float | None

    def as_json(self) -> dict[str, object]:
        return {
            "index": self.index,
            "params": dict(self.params),
            "status": self.status,
            "state": self.state,
            "value": self.value,
            "run_id": self.run_id,
            "duration_seconds": None if self.duration is None else round(self.duration, 3),
        }


@dataclass(frozen=True)
class SearchResult:
    parent_run_id: str
    experiment_id: str
    status: RunStatus
    exit_code: int
    objective: str
    direction: str
    rows: tuple[TrialRow, ...]
    best: TrialRow | None
    executed: int  # trials run by this invocation

    @property
    def searched(self) -> tuple[str, ...]:
        return tuple(self.rows[0].params) if self.rows else ()

    def as_json(self) -> dict[str, object]:
        return {
            "parent_run_id": self.parent_run_id,
            "experiment_id": self.experiment_id,
            "status": self.status.name,
            "exit_code": self.exit_code,
            "objective": self.objective,
            "direction": self.direction,
            "executed": self.executed,
            "best": None if self.best is None else self.best.as_json(),
            "trials": [row.as_json() for row in self.rows],
        }


def execute_search(
    plan: SearchPlan,
    settings: Settings,
    output: SweepOutput,
    watch: Callable[[TrialUpdate], None] | None = None,
) -> SearchResult:
    """Run trials under a parent until `plan.trials` are told (or Ctrl-C), then list them.
    `watch` is told each trial's start and end (the search then logs no line per trial)."""
    store = open_store(settings)
    if plan.resume is not None:
        parent, experiment = _reopen_parent(store, plan.resume)
    else:
        experiment = experiment_for(store, plan.base)
        parent = _create_parent(store, experiment, plan, settings)
    stop = StopAll()
    try:  # from its creation (or reopening) on, whatever stops the search ends the parent
        study, progress = _study(plan, store, experiment, parent)
        if watch is not None:
            progress.watch = watch
        log.info(
            "search %s (%s): %s of %s, %d trials, %d at a time", parent.run_id, parent.run_name,
            plan.definition.direction, plan.definition.objective, plan.trials, plan.jobs,
        )  # fmt: skip
        if plan.base.job is None:
            prepared = prepare_shared_env(store, parent, plan.base, output.progress)
            run_trials(plan, study, store, parent, prepared, settings, output, stop, progress)
        elif plan.base.job.backend.name == "slurm":  # the nodes prepare the env
            run_batches(plan, study, store, parent, experiment, settings, output, stop, progress)
        else:  # Ray: a job per trial, followed in a thread of its own; the node prepares
            run_trials(plan, study, store, parent, None, settings, output, stop, progress)
    except BaseException as exc:
        killed = isinstance(exc, KeyboardInterrupt)
        finish_run(store, parent, RunStatus.KILLED if killed else RunStatus.FAILED)
        raise
    try:
        rows = _rows(store, experiment, parent, plan)
    except BaseException as exc:  # a lost server, Ctrl-C: the parent still ends
        killed = isinstance(exc, KeyboardInterrupt) or stop.signum is not None
        finish_run(store, parent, RunStatus.KILLED if killed else RunStatus.FAILED)
        raise
    best = _best(rows, plan.definition.direction)
    if stop.signum is not None:
        status, exit_code = RunStatus.KILLED, interrupted_exit_code(stop.signum)
    elif best is None:
        log.warning("no trial logged %s: the search found nothing", plan.definition.objective)
        status, exit_code = RunStatus.FAILED, 1
    else:
        status, exit_code = RunStatus.FINISHED, 0
    parent = finish_run(store, parent, status)
    return SearchResult(
        parent.run_id, experiment.experiment_id, status, exit_code, plan.definition.objective,
        plan.definition.direction, tuple(rows), best, progress.executed,
    )  # fmt: skip


def _study(
    plan: SearchPlan, store: Store, experiment: Experiment, parent: RunInfo
) -> tuple[Study, Progress]:
    """A new study, or one rebuilt from the children a resumed search recorded; the
    enqueued points first."""
    definition = plan.definition
    if plan.resume is not None:
        children = _children(store, experiment, parent)
        # The seed moves on by the trials recorded, or the sampler would draw them again.
        seed = None if definition.seed is None else definition.seed + len(children)
        study = Study(plan.space, definition.sampler, definition.direction, definition.prune, seed)
        progress = _rebuild(study, store, children, plan)
    else:
        study = Study(
            plan.space, definition.sampler, definition.direction, definition.prune, definition.seed
        )
        progress = Progress(told=0, next_index=1)
    for point in plan.enqueued:
        study.enqueue(point)
    return study, progress


def _create_parent(
    store: Store, experiment: Experiment, plan: SearchPlan, settings: Settings
) -> RunInfo:
    base = plan.base
    backend = "local" if base.job is None else base.job.backend.name
    tags = parent_tags(base, settings.user, backend, SEARCH)
    parent = store.create_run(experiment, base.run_name, settings.user, tags)
    record_git_diff(store, parent, base.source)
    definition = json.dumps(plan.definition.as_json())  # in -P order: the table's columns
    store.log_params(parent, {SEARCH_PARAM: definition})
    return parent


def _reopen_parent(store: Store, recorded: RecordedRun) -> tuple[RunInfo, Experiment]:
    """The parent runs again while the search continues, owned by this process."""
    parent = store.set_run_status(recorded.info, RunStatus.RUNNING)
    store.set_tags(parent, runner_tags())
    return parent, store.get_experiment(parent.experiment_id)


def _children(store: Store, experiment: Experiment, parent: RunInfo) -> list[RecordedRun]:
    """The search's children in the order their trials were asked."""
    return sorted(
        runs_tagged(store, experiment.experiment_id, PARENT_TAG, parent.run_id),
        key=lambda run: int(run.tags.get(INDEX_TAG, "0")),
    )


def _rebuild(
    study: Study, store: Store, children: Sequence[RecordedRun], plan: SearchPlan
) -> Progress:
    """The study as the children recorded it: told trials are added as they ended; a trial
    Ctrl-C (or a lost mlrun) ended before it was told runs its point again, first."""
    progress = Progress(told=0, next_index=1)
    searched = [d.name for d in plan.space.searched]
    for child in children:
        progress.next_index = max(progress.next_index, int(child.tags.get(INDEX_TAG, "0")) + 1)
        values = {name: child.params[name] for name in searched if name in child.params}
        if len(values) < len(searched) or not all(
            plan.space.by_name()[n].contains(v) for n, v in values.items()
        ):
            log.warning("child %s does not hold a point of the space; left out", child.info.run_id)
            continue
        state = _recorded_state(child, plan.definition.objective)
        if state is None:
            study.enqueue(values)
            continue
        value = child.metrics.get(plan.definition.objective) if state == COMPLETE else None
        study.add_recorded(RecordedTrial(values, state, value, _intermediate(store, child, plan)))
        progress.told += 1
        if value is not None and improves(plan.definition.direction, progress.best, value):
            progress.best = value
    log.info("resumed with %d told trials of %d", progress.told, plan.trials)
    return progress


def _recorded_state(child: RecordedRun, objective: str) -> str | None:
    """How a child was told; for one mlrun could not tell (it died first), how it would have
    been; None for a trial Ctrl-C ended, whose point runs again."""
    state = child.tags.get(TRIAL_STATE_TAG)
    if state is not None:
        return state
    if child.tags.get(PRUNED_TAG) == "true" and child.info.status == RunStatus.KILLED:
        return PRUNED
    if child.info.status in (RunStatus.FINISHED, RunStatus.FAILED):
        return outcome(child.info.status, child.metrics, objective)[0]
    return None


def _intermediate(store: Store, child: RecordedRun, plan: SearchPlan) -> dict[int, float]:
    """A recorded trial's objective by step, for a pruner to compare new trials with."""
    if plan.definition.prune is None:
        return {}
    history = store.metric_history(child.info, plan.definition.objective)
    return {step: value for _, value, step in history if math.isfinite(value)}


def _rows(
    store: Store, experiment: Experiment, parent: RunInfo, plan: SearchPlan
) -> list[TrialRow]:
    searched = [d.name for d in plan.space.searched]
    return [
        _row(child, searched, plan.definition.objective)
        for child in _children(store, experiment, parent)
    ]


def _row(child: RecordedRun, searched: Sequence[str], objective: str) -> TrialRow:
    state = child.tags.get(TRIAL_STATE_TAG)
    return TrialRow(
        index=int(child.tags.get(INDEX_TAG, "0")),
        params={name: child.params.get(name, "") for name in searched},
        status=child.info.status.name,
        state=state,
        value=child.metrics.get(objective) if state == COMPLETE else None,
        run_id=child.info.run_id,
        duration=child.duration_seconds,
    )


def _best(rows: Sequence[TrialRow], direction: str) -> TrialRow | None:
    complete = [row for row in rows if row.state == COMPLETE and row.value is not None]
    if not complete:
        return None
    choose: Callable[..., TrialRow] = min if direction == "minimize" else max
    return choose(complete, key=lambda row: row.value)
