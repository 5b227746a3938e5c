"""The runs commands: list with MLflow's filter language, describe, compare, delete, gc."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mlrun_cli.backends import JOB_BACKENDS
from mlrun_cli.core.settings import Settings
from mlrun_cli.errors import NotFoundError, StoreError, UsageError
from mlrun_cli.run.finish import finish_run
from mlrun_cli.run.runner_identity import (
    end_recorded_group,
    has_live_group,
    live_group_ids,
    runner_alive,
)
from mlrun_cli.tracking import artifacts
from mlrun_cli.tracking.entities import ACTIVE, DELETED, RunStatus
from mlrun_cli.tracking.search import parse_filter, parse_order_by
from mlrun_cli.tracking.store import RecordedRun, Store, existing_store, find_run, open_store
from mlrun_cli.tracking.tags import (
    BACKEND_TAG,
    DURATION_TAG,
    GC_TAG,
    GIT_COMMIT_TAG,
    GIT_DIFF_TAG,
    RUN_KEY_TAG,
    RUN_NAME_TAG,
    RUNNER_TAG_PREFIX,
)


@dataclass(frozen=True)
class RunQuery:
    experiment_ids: Sequence[str] = ()
    experiment_names: Sequence[str] = ()
    filter: str | None = None
    order_by: Sequence[str] = ()
    max_results: int = 1000
    status: str | None = None
    view: str = "active_only"


@dataclass(frozen=True)
class RunListing:
    runs: list[RecordedRun]
    experiment_names: dict[str, str]

    def differing_keys(self) -> tuple[list[str], list[str]]:
        """The params and metrics whose values are not the same across the listed runs."""
        return _differing([r.params for r in self.runs]), _differing([r.metrics for r in self.runs])


def list_runs(settings: Settings, query: RunQuery) -> RunListing:
    """The runs matching the query, in MLflow's order, at most `max_results` of them."""
    if query.max_results < 1:
        raise UsageError("--max-results must be at least 1")
    parse_filter(query.filter)  # a bad filter is reported here, by column, for every store
    for text in query.order_by:
        parse_order_by(text)
    store = open_store(settings)
    if not store.exists():
        return RunListing([], {})
    store.check_readable()
    experiments = _experiments(store, query)
    filter_string = query.filter
    if query.status is not None:
        status = f"attributes.status = '{query.status}'"
        filter_string = f"{filter_string} and {status}" if filter_string else status
    runs = store.search_runs(
        list(experiments), filter_string, query.order_by, query.view, query.max_results
    )
    return RunListing(list(runs), experiments)


def _experiments(store: Store, query: RunQuery) -> dict[str, str]:
    chosen = {}
    for experiment_id in query.experiment_ids:
        chosen[experiment_id] = store.get_experiment(experiment_id).name
    for name in query.experiment_names:
        experiment = store.find_experiment(name)
        if experiment is None:
            raise NotFoundError(f"no experiment named '{name}' in {store.location}")
        chosen[experiment.experiment_id] = name
    if chosen:
        return chosen
    return {e.experiment_id: e.name for e in store.list_experiments("active_only")}


def _differing(values: list[dict[str, Any]]) -> list[str]:
    keys = sorted({key for entry in values for key in entry})
    return [key for key in keys if len({repr(entry.get(key)) for entry in values}) > 1]


@dataclass(frozen=True)
class RunDetails:
    run: RecordedRun
    experiment_name: str
    artifacts: list[tuple[str, int]]
    provenance: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        info = self.run.info
        params, metrics, tags = self.run.params, self.run.metrics, self.run.tags
        return {
            "run_id": info.run_id,
            "run_name": info.run_name,
            "experiment_id": info.experiment_id,
            "experiment_name": self.experiment_name,
            "status": info.status.name,
            "lifecycle_stage": info.lifecycle_stage,
            "user_id": info.user_id,
            "start_time": info.start_time,
            "end_time": info.end_time,
            "duration_seconds": self.run.duration_seconds,
            "artifact_uri": info.artifact_uri,
            "params": params,
            "metrics": metrics,
            "tags": tags,
            "artifacts": [{"path": p, "size": s} for p, s in self.artifacts],
            "provenance": self.provenance,
            "damage": list(self.run.damage),  # after reading: reading finds it
        }


def describe(settings: Settings, prefix: str) -> RunDetails:
    store = existing_store(settings)
    run = find_run(store, prefix)
    text = store.read_artifact(run.info, artifacts.RUN_RECORD)
    provenance: dict[str, Any] = {}
    record = _json_object(text)
    if record is None and text is not None:
        run.damage.append(f"artifact {artifacts.RUN_RECORD} unreadable")
    if record is not None:
        provenance = {
            "source": record.get("source", {}),
            "environment": record.get("environment", {}),
            "command": record.get("command"),
        }
    try:
        experiment_name = store.get_experiment(run.info.experiment_id).name
    except StoreError as exc:  # a damaged experiment: the run is still shown
        run.damage.append(exc.message)
        experiment_name = "-"
    return RunDetails(run, experiment_name, store.list_artifacts(run.info), provenance)


def _json_object(text: str | None) -> dict[str, Any] | None:
    try:
        document = json.loads(text) if text is not None else None
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


@dataclass(frozen=True)
class Difference:
    section: str  # params, metrics, tags, code, environment, inputs
    key: str
    left: str | None
    right: str | None


@dataclass(frozen=True)
class Comparison:
    left: RecordedRun
    right: RecordedRun
    differences: list[Difference]


def compare(settings: Settings, left_prefix: str, right_prefix: str) -> Comparison:
    """Only what differs between two runs: values, code, environment and input data."""
    store = existing_store(settings)
    left, right = find_run(store, left_prefix), find_run(store, right_prefix)
    differences: list[Difference] = []
    for section, a, b in (
        ("params", left.params, right.params),
        ("metrics", _str_values(left.metrics), _str_values(right.metrics)),
        ("tags", _comparable_tags(left.tags), _comparable_tags(right.tags)),
        ("code", _code(store, left), _code(store, right)),
        ("environment", _packages(store, left), _packages(store, right)),
    ):
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                differences.append(Difference(section, key, a.get(key), b.get(key)))
    return Comparison(left, right, differences)


def _str_values(values: dict[str, float]) -> dict[str, str]:
    return {key: repr(value) for key, value in values.items()}


# Identity and timing, or (the run key) a digest of the inputs that compare shows one by one.
_VOLATILE_TAGS = (
    RUN_NAME_TAG,
    DURATION_TAG,
    RUNNER_TAG_PREFIX,
    GIT_DIFF_TAG,
    RUN_KEY_TAG,
)


def _comparable_tags(tags: dict[str, str]) -> dict[str, str]:
    """Tags that say something about the run's inputs, not about its identity or timing."""
    return {k: v for k, v in tags.items() if not k.startswith(_VOLATILE_TAGS)}


def _code(store: Store, run: RecordedRun) -> dict[str, str]:
    diff = store.read_artifact(run.info, artifacts.GIT_DIFF)
    return {
        "commit": run.tags.get(GIT_COMMIT_TAG, "-"),
        "uncommitted diff": "(none)" if diff is None else diff,
    }


def _packages(store: Store, run: RecordedRun) -> dict[str, str]:
    """name -> pinned line, from the env's lock file artifact."""
    lock = store.read_artifact(run.info, artifacts.ENV_LOCK)
    if lock is None:
        return {}
    packages = {}
    for line in lock.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name = line.split("==")[0].split("=")[0].split(" @ ")[0].strip().lower()
            packages[name] = line
    return packages


def set_lifecycle(settings: Settings, prefix: str, stage: str) -> RecordedRun:
    store = existing_store(settings)
    run = find_run(store, prefix)
    if run.info.lifecycle_stage == stage:
        state = "deleted" if stage == DELETED else "active"
        raise UsageError(f"run {run.info.run_id} is already {state}")
    if stage == ACTIVE and store.get_experiment(run.info.experiment_id).lifecycle_stage != ACTIVE:
        raise UsageError(f"restore experiment {run.info.experiment_id} first; its runs follow it")
    store.set_run_lifecycle(run.info, stage)
    return find_run(store, run.info.run_id)


@dataclass(frozen=True)
class CollectedRun:
    run: RecordedRun
    group_ended: bool  # its entry point's process group still ran, and was killed
    marked_killed: bool = True  # False: the run had ended; only its leftover processes ran


def gc(settings: Settings) -> list[CollectedRun]:
    """Mark KILLED the RUNNING runs whose runner, on this host, is gone, and end what is left
    of their entry points (the recorded process group, after checking it is still that one);
    also of runs that ended but left processes in their group."""
    store = existing_store(settings)
    experiments = [e.experiment_id for e in store.list_experiments("all")]
    runs = [
        r
        for r in store.stored_runs(experiments, "all")
        if r.tags.get(BACKEND_TAG) not in JOB_BACKENDS  # their engine settles them
    ]
    stuck = [
        r for r in runs if r.info.status == RunStatus.RUNNING and runner_alive(r.tags) is False
    ]
    collected = []
    for run in stuck:
        ended = end_recorded_group(run.tags, run.info.run_id)
        note = "; its process group was killed" if ended else ""
        store.set_tags(run.info, {GC_TAG: f"runner process was gone{note}"})
        finish_run(store, run.info, RunStatus.KILLED)  # what its runner staged is published
        collected.append(CollectedRun(run, ended))
    live = live_group_ids()
    for run in runs:
        if run.info.status == RunStatus.RUNNING or not has_live_group(run.tags, live):
            continue
        if runner_alive(run.tags) is False and end_recorded_group(run.tags, run.info.run_id):
            collected.append(CollectedRun(run, group_ended=True, marked_killed=False))
    return collected
