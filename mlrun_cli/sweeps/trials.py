"""A search's loop: ask a trial, run it as a child, watch it, tell the study how it ended.

Each running trial has its own stop request: the search forwards Ctrl-C to every one, and the
pruner stops one alone (SIGTERM to its process group, then SIGKILL after the grace period, as
for Ctrl-C; the child ends KILLED). With `--prune`, every PRUNE_POLL_SECONDS the loop reads each
running child's new points of the objective (by step) from the store and reports them to the
study; a trial the pruner prunes is tagged `mlrun.search.pruned` and told PRUNED.
"""

from __future__ import annotations

import json
import logging
import math
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace

from mlrun_cli.backends.streams import StopRequest, handling_signals
from mlrun_cli.core.settings import Settings
from mlrun_cli.envs import PreparedEnv
from mlrun_cli.run.run_key import KeyMemo, compute_run_key
from mlrun_cli.sweeps.batch import StopAll
from mlrun_cli.sweeps.plan import SweepOutput, SweepPoint, label
from mlrun_cli.sweeps.search_plan import SearchPlan
from mlrun_cli.sweeps.spaces import trial_values
from mlrun_cli.sweeps.study import COMPLETE, FAIL, PRUNED, Study
from mlrun_cli.sweeps.sweep import resolve_points, run_point
from mlrun_cli.tracking.entities import RunInfo, RunStatus
from mlrun_cli.tracking.store import RecordedRun, Store
from mlrun_cli.tracking.tags import (
    BEST_PARAMS_TAG,
    BEST_RUN_TAG,
    BEST_TRIAL_TAG,
    BEST_VALUE_TAG,
    INDEX_TAG,
    PARENT_TAG,
    PRUNED_TAG,
    TRIAL_STATE_TAG,
)

log = logging.getLogger(__name__)
PRUNE_POLL_SECONDS = 0.5


RUNNING = "RUNNING"  # a trial's state in a TrialUpdate until it is told
INTERRUPTED = "INTERRUPTED"  # ended by Ctrl-C before it was told; --resume runs it again


@dataclass(frozen=True)
class TrialUpdate:
    """What a watcher of the search (the CLI's live table) is told each time a trial starts
    or ends: the trial, and the search's count at that moment."""

    index: int  # 1-based, in the order the trials were asked
    params: Mapping[str, str]  # the searched parameters
    state: str  # RUNNING, INTERRUPTED, or as told: COMPLETE, FAIL, PRUNED
    value: float | None
    told: int
    trials: int
    best: float | None


def _unwatched(update: TrialUpdate) -> None:
    """Nobody watches: the search logs a line per told trial instead."""


@dataclass
class Progress:
    """The search's running count, and who is told of each trial's start and end."""

    told: int
    next_index: int
    executed: int = 0
    best: float | None = None
    watch: Callable[[TrialUpdate], None] = _unwatched

    def update(self, plan: SearchPlan, point: SweepPoint, state: str, value: float | None) -> None:
        searched = {d.name: point.values[d.name] for d in plan.space.searched}
        self.watch(
            TrialUpdate(point.index, searched, state, value, self.told, plan.trials, self.best)
        )


@dataclass
class RunningTrial:
    number: int  # the study's
    point: SweepPoint
    stop: StopRequest = field(default_factory=StopRequest)
    forwarded: int = 0  # Ctrl-Cs passed on to it (a second one kills at once)
    run_id: str | None = None  # told by the pipeline once the child's run exists
    reported: int = -1  # the last step reported to the study
    last_value: float = math.nan  # the value reported at that step
    pruned: bool = False

    def created(self, run: RunInfo) -> None:
        """Told from the trial's thread: the watch then reads this run, with no search of
        the store (whose cost would grow with every trial the search has run)."""
        self.run_id = run.run_id


def run_trials(
    plan: SearchPlan,
    study: Study,
    store: Store,
    parent: RunInfo,
    prepared: PreparedEnv | None,
    settings: Settings,
    output: SweepOutput,
    stop: StopAll,
    progress: Progress,
) -> None:
    """Ask, run and tell until enough trials are told, at most `plan.jobs` at once (each a
    job followed from here on Ray: `prepared` is None, the node prepares the env)."""
    memo = KeyMemo()
    lock = threading.Lock()
    running: dict[Future[RunInfo | None], RunningTrial] = {}
    next_watch = time.monotonic()

    def start(pool: ThreadPoolExecutor) -> None:
        number, sampled = study.ask()
        point = trial_point(plan, progress.next_index, trial_values(plan.space, sampled), settings)
        progress.next_index += 1
        trial = RunningTrial(number, point)
        key = compute_run_key(point.plan, memo)
        args = (point, parent, prepared, key, settings, output, lock, trial.stop, trial.created)
        running[pool.submit(run_point, *args)] = trial
        progress.update(plan, point, RUNNING, None)

    with ThreadPoolExecutor(max_workers=plan.jobs) as pool, handling_signals(stop):
        while True:
            while (
                stop.signum is None
                and len(running) < plan.jobs
                and progress.told + len(running) < plan.trials
            ):
                start(pool)
            if not running:
                return
            done, _ = wait(running, timeout=0.1, return_when=FIRST_COMPLETED)
            for future in done:
                trial = running.pop(future)
                progress.executed += 1
                tell_trial(plan, study, store, parent, trial, future.result(), stop, progress)
            _forward_signals(stop, running.values())
            if plan.definition.prune is not None and time.monotonic() >= next_watch:
                next_watch = time.monotonic() + PRUNE_POLL_SECONDS
                for trial in running.values():
                    _watch(plan, study, store, trial)


def _forward_signals(stop: StopAll, trials: Iterable[RunningTrial]) -> None:
    """Ctrl-C (and a second one, which kills at once) to every running trial."""
    wanted = 0 if stop.signum is None else 2 if stop.forced else 1
    for trial in trials:
        while stop.signum is not None and trial.forwarded < wanted:
            trial.stop.handle(stop.signum, None)
            trial.forwarded += 1


def trial_point(
    plan: SearchPlan, index: int, values: dict[str, str], settings: Settings
) -> SweepPoint:
    command = resolve_points(plan.base, [values], settings, plan.secrets, plan.earlier_outputs)[0]
    run_plan = replace(plan.base, command=command, run_name=f"{plan.base.run_name}-{index}")
    return SweepPoint(index, values, run_plan)


def _watch(plan: SearchPlan, study: Study, store: Store, trial: RunningTrial) -> None:
    """Report the child's new points of the objective; stop it if the pruner says so."""
    if trial.pruned or trial.run_id is None:
        return
    recorded = store.get_run(trial.run_id)
    if _report_new_steps(plan, study, store, trial, recorded):
        trial.pruned = True
        store.set_tags(recorded.info, {PRUNED_TAG: "true"})
        trial.stop.handle(signal.SIGTERM, None)
        log.info(
            "[%d] %s: pruned at step %d (%s=%.6g)", trial.point.index, label(trial.point.values),
            trial.reported, plan.definition.objective, trial.last_value,
        )  # fmt: skip


def _report_new_steps(
    plan: SearchPlan, study: Study, store: Store, trial: RunningTrial, recorded: RecordedRun
) -> bool:
    """Report the objective's points at steps not reported yet, asking the pruner after each
    (Hyperband records a trial's rungs only when asked); whether it would prune the trial."""
    steps: dict[int, float] = {}
    for _, value, step in store.metric_history(recorded.info, plan.definition.objective):
        if step > trial.reported and math.isfinite(value):
            steps[step] = value  # the last point logged at a step counts
    prune = False
    for step in sorted(steps):
        study.report(trial.number, step, steps[step])
        trial.reported, trial.last_value = step, steps[step]
        prune = study.should_prune(trial.number) or prune
    return prune


def child_id(store: Store, parent: RunInfo, index: int) -> str | None:
    """The run id of the search's child of this index, once its run exists."""
    found = store.search_runs(
        [parent.experiment_id],
        f"tags.`{PARENT_TAG}` = '{parent.run_id}' and tags.`{INDEX_TAG}` = '{index}'",
        (),
        "active_only",
        1,
    )
    return found[0].info.run_id if found else None


def tell_trial(
    plan: SearchPlan,
    study: Study,
    store: Store,
    parent: RunInfo,
    trial: RunningTrial,
    run: RunInfo | None,
    stop: StopAll,
    progress: Progress,
) -> None:
    """Tell the study how the trial ended, record it on the child, and the best on the parent."""
    objective = plan.definition.objective
    point = trial.point
    killed = run is not None and run.status == RunStatus.KILLED
    if killed and stop.signum is not None and not trial.pruned:
        log.info("[%d] %s: interrupted; --resume runs it again", point.index, label(point.values))
        progress.update(plan, point, INTERRUPTED, None)
        return
    if run is None:  # it failed before saying which run it was; the store knows
        found = trial.run_id or child_id(store, parent, point.index)
        recorded = store.get_run(found) if found is not None else None
    else:
        recorded = store.get_run(run.run_id)
    state, value = FAIL, None
    if recorded is not None:
        state, value = outcome(recorded.info.status, recorded.metrics, objective)
        if plan.definition.prune is not None:  # the pruner compares trials at every step
            _report_new_steps(plan, study, store, trial, recorded)
        if killed and trial.pruned:
            state = PRUNED
        store.set_tags(recorded.info, {TRIAL_STATE_TAG: state})
    study.tell(trial.number, state, value)
    progress.told += 1
    if state == FAIL and recorded is not None and recorded.info.status == RunStatus.FINISHED:
        log.warning(
            "[%d] %s: the run never logged %s; told as failed",
            point.index, label(point.values), objective,
        )  # fmt: skip
    if state == COMPLETE and recorded is not None and value is not None:
        _record_best(store, parent, plan, point, recorded.info, value, progress)
    progress.update(plan, point, state, value)
    if progress.watch is not _unwatched:
        return
    shown = "-" if value is None else f"{value:.6g}"
    best = "-" if progress.best is None else f"{progress.best:.6g}"
    log.info(
        "trial %d/%d %s: %s=%s %s (best %s)", progress.told, plan.trials,
        label(point.values), objective, shown, state, best,
    )  # fmt: skip


def outcome(
    status: RunStatus, metrics: Mapping[str, float], objective: str
) -> tuple[str, float | None]:
    """How a child that ended is told: its last value of the objective, or failed."""
    value = metrics.get(objective)
    if status != RunStatus.FINISHED or value is None or not math.isfinite(value):
        return FAIL, None
    return COMPLETE, value


def improves(direction: str, best: float | None, value: float) -> bool:
    if best is None:
        return True
    return value < best if direction == "minimize" else value > best


def _record_best(
    store: Store,
    parent: RunInfo,
    plan: SearchPlan,
    point: SweepPoint,
    child: RunInfo,
    value: float,
    progress: Progress,
) -> None:
    """A new best goes on the parent as tags and as the objective's metric, so MLflow's UI
    shows it beside the parent."""
    if not improves(plan.definition.direction, progress.best, value):
        return
    progress.best = value
    searched = {d.name: point.values[d.name] for d in plan.space.searched}
    store.set_tags(
        parent,
        {
            BEST_RUN_TAG: child.run_id,
            BEST_TRIAL_TAG: str(point.index),
            BEST_VALUE_TAG: repr(value),
            BEST_PARAMS_TAG: json.dumps(searched, sort_keys=True),
        },
    )
    store.log_metrics(parent, {plan.definition.objective: value}, int(time.time() * 1000))
