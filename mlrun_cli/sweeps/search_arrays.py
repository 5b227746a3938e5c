"""`mlrun sweep --search --backend slurm`: the trials in batches, one Slurm job array each.

    ask -j trials -> their children created SCHEDULED -> one job array (slurm_arrays) ->
    every child followed to its end -> tell them all -> ask the next batch

The nodes prepare the env, as for a grid sweep on Slurm. Ctrl-C cancels the running array:
its children end KILLED and are not told, so `--resume` runs their points again.
"""

from __future__ import annotations

from mlrun_cli.core.settings import Settings
from mlrun_cli.run.run_key import KeyMemo, compute_run_key
from mlrun_cli.sweeps.batch import StopAll
from mlrun_cli.sweeps.grid import Grid
from mlrun_cli.sweeps.plan import SweepOutput, SweepPlan
from mlrun_cli.sweeps.search_plan import SearchPlan
from mlrun_cli.sweeps.slurm_arrays import run_array
from mlrun_cli.sweeps.spaces import trial_values
from mlrun_cli.sweeps.study import Study
from mlrun_cli.sweeps.trials import (
    RUNNING,
    Progress,
    RunningTrial,
    child_id,
    tell_trial,
    trial_point,
)
from mlrun_cli.tracking.entities import Experiment, RunInfo
from mlrun_cli.tracking.store import Store


def run_batches(
    plan: SearchPlan,
    study: Study,
    store: Store,
    parent: RunInfo,
    experiment: Experiment,
    settings: Settings,
    output: SweepOutput,
    stop: StopAll,
    progress: Progress,
) -> None:
    """Batches of at most `plan.jobs` trials, each one job array, until enough are told."""
    memo = KeyMemo()
    while stop.signum is None and progress.told < plan.trials:
        trials = []
        for _ in range(min(plan.jobs, plan.trials - progress.told)):
            number, sampled = study.ask()
            values = trial_values(plan.space, sampled)
            trials.append(RunningTrial(number, trial_point(plan, progress.next_index, values,
                                                           settings)))  # fmt: skip
            progress.next_index += 1
            progress.update(plan, trials[-1].point, RUNNING, None)
        points = tuple(trial.point for trial in trials)
        batch = SweepPlan(
            base=plan.base, grid=Grid(()), points=points, backend="slurm", jobs=len(points),
            fail_fast=False, reuse=None, metrics=(), order=None,
        )  # fmt: skip
        keys = {point.index: compute_run_key(point.plan, memo) for point in points}
        staging = f"{parent.run_id}-{points[0].index}"
        run_array(batch, points, parent, experiment, store, keys, settings, output, stop, staging)
        for trial in trials:
            run_id = child_id(store, parent, trial.point.index)
            run = store.get_run(run_id).info if run_id is not None else None
            progress.executed += 1
            tell_trial(plan, study, store, parent, trial, run, stop, progress)
