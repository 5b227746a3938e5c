"""The search's sampler: an Optuna study driven through ask and tell, held in memory only.

The tracking store is the study's storage: every trial is a child run, so a study is rebuilt
from the recorded children (`--resume`) rather than from a database of Optuna's. Optuna is an
optional extra (`mlrun-cli[search]`), imported only here and only for a search.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mlrun_cli.errors import UsageError
from mlrun_cli.sweeps.spaces import CHOICE, FLOAT, INT, Dimension, SearchSpace

if TYPE_CHECKING:
    import optuna

SAMPLERS = ("tpe", "random", "grid")
# One name for every study: Hyperband puts a trial in a bracket by a hash of the study's name
# and the trial's number, so a seeded search prunes the same trials again.
STUDY_NAME = "mlrun-search"
DIRECTIONS = ("minimize", "maximize")
# How a trial ended, as the study is told (and as the child's tag records it).
COMPLETE = "COMPLETE"
FAIL = "FAIL"
PRUNED = "PRUNED"


@dataclass(frozen=True)
class RecordedTrial:
    """A trial read back from a child run: its sampled values (as text), and how it ended."""

    values: Mapping[str, str]
    state: str  # COMPLETE, FAIL or PRUNED
    value: float | None
    intermediate: Mapping[int, float] = field(default_factory=dict)  # step -> value


def require_optuna() -> None:
    """Optuna is the sampler; without it a search cannot start (checked before any write)."""
    try:
        import optuna  # noqa: F401
    except ImportError:
        raise UsageError(
            "--search needs Optuna, which is not installed: pip install 'mlrun-cli[search]'"
        ) from None


def check_sampler(name: str, space: SearchSpace) -> None:
    if name not in SAMPLERS:
        raise UsageError(f"--search {name}: not a sampler; use one of {', '.join(SAMPLERS)}")
    if name == "grid":
        ranges = [d.name for d in space.searched if d.kind == FLOAT]
        if ranges:
            raise UsageError(
                f"--search grid: {', '.join(ranges)} is a float range; give its values as a "
                "list or choice(...), or use --search tpe|random"
            )


def grid_size(space: SearchSpace) -> int:
    size = 1
    for dimension in space.searched:
        size *= len(_grid_values(dimension))
    return size


class Study:
    """One Optuna study over the searched dimensions of a space."""

    def __init__(
        self,
        space: SearchSpace,
        sampler: str,
        direction: str,
        prune: str | None = None,
        seed: int | None = None,
    ) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.space = space
        self.distributions = {d.name: _distribution(d) for d in space.searched}
        self.study = optuna.create_study(
            sampler=_sampler(sampler, space, seed),
            pruner=_pruner(prune),
            direction=optuna.study.StudyDirection[direction.upper()],
            study_name=STUDY_NAME,
        )
        self.running: dict[int, optuna.trial.Trial] = {}

    def ask(self) -> tuple[int, dict[str, float | int | str]]:
        """A new trial: its number and sampled values."""
        trial = self.study.ask(self.distributions)
        self.running[trial.number] = trial
        return trial.number, dict(trial.params)

    def tell(self, number: int, state: str, value: float | None) -> None:
        import optuna

        trial = self.running.pop(number)
        if state == COMPLETE:
            self.study.tell(trial, value)
        else:
            states = optuna.trial.TrialState
            self.study.tell(trial, state=states.PRUNED if state == PRUNED else states.FAIL)

    def report(self, number: int, step: int, value: float) -> None:
        """An intermediate value of a running trial (a pruner compares trials by step)."""
        self.running[number].report(value, step)

    def should_prune(self, number: int) -> bool:
        return self.running[number].should_prune()

    def enqueue(self, values: Mapping[str, str]) -> None:
        dimensions = self.space.by_name()
        self.study.enqueue_trial(
            {name: dimensions[name].sampler_value(text) for name, text in values.items()},
            skip_if_exists=False,
        )

    def add_recorded(self, trial: RecordedTrial) -> None:
        """A trial the store recorded (a resumed search), told as it ended."""
        import optuna

        dimensions = self.space.by_name()
        states = optuna.trial.TrialState
        state = {COMPLETE: states.COMPLETE, PRUNED: states.PRUNED}.get(trial.state, states.FAIL)
        self.study.add_trial(
            optuna.trial.create_trial(
                params={n: dimensions[n].sampler_value(v) for n, v in trial.values.items()},
                distributions=self.distributions,
                value=trial.value if state == states.COMPLETE else None,
                state=state,
                intermediate_values=dict(trial.intermediate),
            )
        )


def _distribution(dimension: Dimension) -> optuna.distributions.BaseDistribution:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if dimension.kind == FLOAT:
        return FloatDistribution(dimension.low, dimension.high, log=dimension.log)
    if dimension.kind == INT:
        return IntDistribution(int(dimension.low), int(dimension.high))
    assert dimension.kind == CHOICE
    return CategoricalDistribution(dimension.values)


def _pruner(name: str | None) -> optuna.pruners.BasePruner:
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner()
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner()
    return optuna.pruners.NopPruner()


def _sampler(name: str, space: SearchSpace, seed: int | None) -> optuna.samplers.BaseSampler:
    import optuna

    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    grid = {d.name: list(_grid_values(d)) for d in space.searched}
    return _grid_sampler()(grid, seed=seed)


def _grid_sampler() -> type[optuna.samplers.GridSampler]:
    import optuna

    class BoundedGrid(optuna.samplers.GridSampler):
        """Optuna's grid without its stop at the end: `Study.stop` only works inside
        `optimize` and raises in ask-and-tell; the search ends at the grid's size itself."""

        def after_trial(self, *_: object) -> None:
            return None

    return BoundedGrid


def _grid_values(dimension: Dimension) -> tuple[float | int | str, ...]:
    if dimension.kind == INT:
        return tuple(range(int(dimension.low), int(dimension.high) + 1))
    return dimension.values
