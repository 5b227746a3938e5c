"""The records of the store, as immutable values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Protocol


class RunStatus(IntEnum):
    """MLflow's numbering, as stored in a run's meta.yaml."""

    RUNNING = 1
    SCHEDULED = 2
    FINISHED = 3
    FAILED = 4
    KILLED = 5


# A run in one of these has ended: nothing changes its status again.
FINAL_STATUSES = frozenset({RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED})


ACTIVE = "active"
DELETED = "deleted"


@dataclass(frozen=True)
class Experiment:
    experiment_id: str
    name: str
    artifact_location: str
    lifecycle_stage: str
    creation_time: int | None
    last_update_time: int | None
    tags: Mapping[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        return {
            "experiment_id": self.experiment_id,
            "name": self.name,
            "artifact_location": self.artifact_location,
            "lifecycle_stage": self.lifecycle_stage,
            "creation_time": self.creation_time,
            "last_update_time": self.last_update_time,
            "tags": dict(self.tags),
        }


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    experiment_id: str
    run_name: str
    status: RunStatus
    start_time: int
    end_time: int | None
    lifecycle_stage: str
    artifact_uri: str
    user_id: str

    def attribute(self, key: str) -> str | int | None:
        """An attribute as MLflow's search names it (`attributes.status`, ...)."""
        values: dict[str, str | int | None] = {
            "run_id": self.run_id,
            "run_name": self.run_name,
            "status": self.status.name,
            "user_id": self.user_id,
            "artifact_uri": self.artifact_uri,
            "start_time": self.start_time,
            "end_time": self.end_time,
        }
        return values[key]

    @property
    def duration_seconds(self) -> float | None:
        return None if self.end_time is None else (self.end_time - self.start_time) / 1000


class SearchableRun(Protocol):
    """What a run must offer to be searched and sorted."""

    def attribute(self, key: str) -> Any: ...

    @property
    def metrics(self) -> dict[str, float]: ...

    @property
    def params(self) -> dict[str, str]: ...

    @property
    def tags(self) -> dict[str, str]: ...

    def metric(self, key: str) -> float | None:
        """One metric's latest value (a filter needs that one only)."""
        ...

    def param(self, key: str) -> str | None: ...

    def tag(self, key: str) -> str | None: ...
