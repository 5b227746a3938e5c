"""`mlrun sweep --search`: what was asked, and every check made before anything is written.

A search is recorded as a parent run whose param `mlrun.search` is its definition (the `-P`
spaces, sampler, objective, direction, seed, trials); `--resume PARENT` reads that definition
back rather than taking it from the command line again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from mlrun_cli.core.settings import Settings
from mlrun_cli.errors import MlrunError, UsageError
from mlrun_cli.run.earlier_outputs import EarlierOutputs, read_earlier_outputs
from mlrun_cli.run.pipeline import plan_run
from mlrun_cli.run.plan import RunPlan
from mlrun_cli.sweeps.plan import SweepRequest
from mlrun_cli.sweeps.spaces import SearchSpace, check_space, parse_point, parse_space
from mlrun_cli.sweeps.study import DIRECTIONS, check_sampler, grid_size, require_optuna
from mlrun_cli.tracking.entities import FINAL_STATUSES
from mlrun_cli.tracking.keys import key_problem
from mlrun_cli.tracking.store import RecordedRun, existing_store, find_run
from mlrun_cli.tracking.tags import ENTRY_POINT_TAG, SEARCH_PARAM, SOURCE_TAG

DEFINITION_FORMAT = 1
PRUNERS = ("median", "hyperband")
BACKENDS = ("local", "slurm", "ray")  # where a search's trials run


@dataclass(frozen=True)
class SearchRequest:
    sweep: SweepRequest  # its run's `parameters` are the `-P name=SPACE` items
    sampler: str | None = None
    trials: int | None = None
    objective: str | None = None
    direction: str | None = None  # "minimize" or "maximize"
    seed: int | None = None
    prune: str | None = None
    enqueue: Sequence[str] = ()
    resume: str | None = None  # the parent run id of a search to continue


@dataclass(frozen=True)
class SearchDefinition:
    """What the parent run records, and a resumed search reads back."""

    space: Mapping[str, str]  # name -> the space as written
    sampler: str
    objective: str
    direction: str
    trials: int
    seed: int | None
    prune: str | None = None

    def as_json(self) -> dict[str, object]:
        return {
            "format": DEFINITION_FORMAT,
            "space": dict(self.space),
            "sampler": self.sampler,
            "objective": self.objective,
            "direction": self.direction,
            "trials": self.trials,
            "seed": self.seed,
            "prune": self.prune,
        }

    @classmethod
    def from_param(cls, run_id: str, text: str) -> SearchDefinition:
        try:
            data = json.loads(text)
            seed, prune = data["seed"], data.get("prune")
            return cls(
                space={str(k): str(v) for k, v in data["space"].items()},
                sampler=str(data["sampler"]),
                objective=str(data["objective"]),
                direction=str(data["direction"]),
                trials=int(data["trials"]),
                seed=None if seed is None else int(seed),
                prune=None if prune is None else str(prune),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            raise UsageError(
                f"--resume {run_id}: its param {SEARCH_PARAM} is not a search definition"
            ) from None


@dataclass(frozen=True)
class SearchPlan:
    base: RunPlan  # the run of one point: checks everything but the space
    definition: SearchDefinition
    space: SearchSpace
    trials: int  # told trials to reach (recorded ones included)
    jobs: int
    enqueued: tuple[Mapping[str, str], ...]
    secrets: tuple[str, ...]
    # The project's recorded outputs, read once for every trial (as a grid sweep reads them
    # once for all its points): read per trial, a store's search would grow with its runs.
    earlier_outputs: EarlierOutputs
    resume: RecordedRun | None = None  # the parent of a search to continue


def plan_search(request: SearchRequest, settings: Settings) -> SearchPlan:
    """Every check before anything is written: options, Optuna, the space against the entry
    point's declared types, the enqueued points."""
    sweep = request.sweep
    _check_options(request)
    parent = _resumed_parent(request, settings) if request.resume else None
    definition = (
        SearchDefinition.from_param(parent.info.run_id, parent.params[SEARCH_PARAM])
        if parent is not None
        else _definition(request, settings)
    )
    space = parse_space([f"{k}={v}" for k, v in definition.space.items()], settings.cwd)
    check_sampler(definition.sampler, space)
    require_optuna()
    if not space.searched:
        raise UsageError(
            "nothing to search: give a parameter a space, like -P lr=loguniform(1e-4,1e-1)"
        )
    sample = [f"{k}={v}" for k, v in space.sample_point().items()]
    run = replace(sweep.run, parameters=sample, backend=sweep.backend)
    if parent is not None:  # new trials join the parent's experiment, named after it
        info = parent.info
        run = replace(run, experiment_id=info.experiment_id, run_name=info.run_name)
    base = plan_run(run, settings)
    check_space(space, base.entry, settings.cwd)
    if parent is not None:
        _check_same_project(parent, base)
    trials = request.trials if request.trials is not None else definition.trials
    if definition.sampler == "grid":
        trials = min(trials, grid_size(space))
    enqueued = tuple(parse_point(text, space, "--enqueue") for text in request.enqueue)
    return SearchPlan(
        base=base,
        definition=replace(definition, trials=trials) if parent is None else definition,
        space=space,
        trials=trials,
        jobs=min(sweep.jobs, trials),
        enqueued=enqueued,
        secrets=tuple(sweep.run.secret_params),
        earlier_outputs=read_earlier_outputs(base.source.source_name, settings),
        resume=parent,
    )


def _check_options(request: SearchRequest) -> None:
    sweep = request.sweep
    if sweep.jobs < 1:
        raise UsageError(f"-j {sweep.jobs}: run at least one trial at a time")
    if request.trials is not None and request.trials < 1:
        raise UsageError(f"--trials {request.trials}: run at least one trial")
    if request.prune is not None and request.prune not in PRUNERS:
        raise UsageError(f"--prune {request.prune}: use one of {', '.join(PRUNERS)}")
    if sweep.backend not in BACKENDS:
        raise UsageError(
            f"--backend {sweep.backend}: a search runs its trials on "
            f"{', '.join(BACKENDS)}; use one of those"
        )
    if sweep.backend != "local" and request.prune is not None:
        raise UsageError(
            f"--prune {request.prune}: pruning stops trials on this machine only for now; "
            f"drop --prune or --backend {sweep.backend}"
        )
    unsupported = {
        "--reuse": sweep.reuse is not None,
        "--zip": sweep.zipped,
        "--fail-fast": sweep.fail_fast,
        "--metric": bool(sweep.metrics),
        "--order-by": sweep.order_by is not None,
    }
    for option, given in unsupported.items():
        if given:
            raise UsageError(f"{option} does not go with --search or --resume")


def _definition(request: SearchRequest, settings: Settings) -> SearchDefinition:
    if request.sampler is None:
        raise UsageError("give --search tpe|random|grid, or --resume PARENT_RUN_ID")
    if request.trials is None:
        raise UsageError("--search needs --trials N: how many trials to run")
    objective = request.objective
    if objective is None:
        raise UsageError("--search needs --objective METRIC: the metric the trials log")
    problem = key_problem(objective.strip())
    if problem is not None:
        raise UsageError(f"--objective {objective!r} names no metric: {problem}")
    if request.direction not in DIRECTIONS:
        raise UsageError(f"--objective {objective}: say --minimize or --maximize")
    parsed = parse_space(request.sweep.run.parameters, settings.cwd)
    return SearchDefinition(
        space=parsed.as_json(),
        sampler=request.sampler,
        objective=objective.strip(),
        direction=request.direction,
        trials=request.trials,
        seed=request.seed,
        prune=request.prune,
    )


def _resumed_parent(request: SearchRequest, settings: Settings) -> RecordedRun:
    given = {
        "-P": bool(request.sweep.run.parameters),
        "--search": request.sampler is not None,
        "--objective": request.objective is not None,
        "--minimize/--maximize": request.direction is not None,
        "--seed": request.seed is not None,
        "--prune": request.prune is not None,
        "--experiment-name": request.sweep.run.experiment_name is not None,
        "--experiment-id": request.sweep.run.experiment_id is not None,
        "--run-name": request.sweep.run.run_name is not None,
    }
    for option, present in given.items():
        if present:
            raise UsageError(f"--resume continues the search its parent recorded; drop {option}")
    assert request.resume is not None
    try:
        parent = find_run(existing_store(settings), request.resume)
    except MlrunError as exc:
        raise UsageError(f"--resume {request.resume}: {exc.message}") from None
    if SEARCH_PARAM not in parent.params:
        raise UsageError(f"--resume {request.resume}: run {parent.info.run_id} is not a search")
    if parent.info.status not in FINAL_STATUSES:
        raise UsageError(
            f"--resume {request.resume}: the search is still {parent.info.status.name}; "
            "wait for it or cancel it (mlrun runs cancel)"
        )
    return parent


def _check_same_project(parent: RecordedRun, base: RunPlan) -> None:
    recorded = (parent.tags.get(SOURCE_TAG), parent.tags.get(ENTRY_POINT_TAG))
    given = (base.source.source_name, base.entry.name)
    if recorded != given:
        raise UsageError(
            f"--resume {parent.info.run_id}: the search ran {recorded[1]} of {recorded[0]}, "
            f"not {given[1]} of {given[0]}"
        )
