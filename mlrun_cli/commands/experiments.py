"""The experiment commands, by id or by name, over the file store."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from mlrun_cli.core.settings import Settings
from mlrun_cli.errors import NotFoundError, UsageError
from mlrun_cli.tracking.entities import Experiment
from mlrun_cli.tracking.file_store import check_experiment_name
from mlrun_cli.tracking.store import Store, existing_store, open_store


@dataclass(frozen=True)
class ExperimentRef:
    """What the user named: exactly one of an id or a name."""

    experiment_id: str | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if (self.experiment_id is None) == (self.name is None):
            raise UsageError("name the experiment with --experiment-id or --experiment-name (one)")


@dataclass(frozen=True)
class ExperimentSummary:
    experiment: Experiment
    run_counts: dict[str, int]

    def as_json(self) -> dict[str, object]:
        return {**self.experiment.as_json(), "runs": dict(self.run_counts)}


def find(store: Store, ref: ExperimentRef) -> Experiment:
    if ref.experiment_id is not None:
        return store.get_experiment(ref.experiment_id)
    assert ref.name is not None  # guaranteed by ExperimentRef
    experiment = store.find_experiment(ref.name)
    if experiment is None:
        raise NotFoundError(f"no experiment named '{ref.name}' in {store.location}")
    return experiment


def create(settings: Settings, name: str, artifact_location: str | None = None) -> Experiment:
    check_experiment_name(name)  # before the store exists: a refused name writes nothing
    store = open_store(settings)
    store.ensure()
    return store.create_experiment(name, artifact_location)


def list_experiments(settings: Settings, view: str = "active_only") -> list[Experiment]:
    """A store that does not exist yet has no experiments; listing does not create it."""
    store = open_store(settings)
    if not store.exists():
        return []
    store.check_readable()
    return store.list_experiments(view)


def rename(settings: Settings, ref: ExperimentRef, new_name: str) -> Experiment:
    store = existing_store(settings)
    return store.rename_experiment(find(store, ref).experiment_id, new_name)


def delete(settings: Settings, ref: ExperimentRef) -> Experiment:
    store = existing_store(settings)
    return store.delete_experiment(find(store, ref).experiment_id)


def restore(settings: Settings, ref: ExperimentRef) -> Experiment:
    store = existing_store(settings)
    return store.restore_experiment(find(store, ref).experiment_id)


def describe(settings: Settings, ref: ExperimentRef) -> ExperimentSummary:
    store = existing_store(settings)
    experiment = find(store, ref)
    counts = Counter(info.status.name for info in store.list_runs(experiment))
    return ExperimentSummary(experiment, dict(sorted(counts.items())))
