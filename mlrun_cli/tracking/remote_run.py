"""Runs and experiments as MLflow's REST API returns them, turned into mlrun's records.

The database store produces the same JSON (MLflow's entities through their protobuf form), so
one reading serves both remote stores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mlrun_cli.tracking.entities import ACTIVE, Experiment, RunInfo, RunStatus

JsonObject = dict[str, Any]


def key_values(items: Sequence[Mapping[str, Any]] | None) -> dict[str, str]:
    return {str(item["key"]): str(item.get("value", "")) for item in items or ()}


def as_key_values(values: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"key": key, "value": value} for key, value in values.items()]


def experiment_from_json(data: Mapping[str, Any]) -> Experiment:
    return Experiment(
        experiment_id=str(data["experiment_id"]),
        name=str(data.get("name", "")),
        artifact_location=str(data.get("artifact_location", "")),
        lifecycle_stage=str(data.get("lifecycle_stage", ACTIVE)),
        creation_time=_int_or_none(data.get("creation_time")),
        last_update_time=_int_or_none(data.get("last_update_time")),
        tags=key_values(data.get("tags")),
    )


def run_info_from_json(info: Mapping[str, Any]) -> RunInfo:
    return RunInfo(
        run_id=str(info.get("run_id") or info["run_uuid"]),
        experiment_id=str(info["experiment_id"]),
        run_name=str(info.get("run_name", "")),
        status=RunStatus[str(info.get("status", "RUNNING"))],
        start_time=int(info.get("start_time") or 0),
        end_time=_int_or_none(info.get("end_time")),
        lifecycle_stage=str(info.get("lifecycle_stage", ACTIVE)),
        artifact_uri=str(info.get("artifact_uri", "")),
        user_id=str(info.get("user_id", "")),
    )


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


class RemoteRun:
    """A run with its data, as one search or get answer carries it."""

    deleted_time: int | None = None  # MLflow's REST API does not report it

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.info = run_info_from_json(data["info"])
        run_data = data.get("data", {})
        self.params = key_values(run_data.get("params"))
        self.tags = key_values(run_data.get("tags"))
        self.metrics = {str(m["key"]): float(m["value"]) for m in run_data.get("metrics", ())}
        self.damage: list[str] = []  # a server answers whole runs or none

    def metric(self, key: str) -> float | None:
        return self.metrics.get(key)

    def param(self, key: str) -> str | None:
        return self.params.get(key)

    def tag(self, key: str) -> str | None:
        return self.tags.get(key)

    def attribute(self, key: str) -> Any:
        return self.info.attribute(key)

    @property
    def duration_seconds(self) -> float | None:
        return self.info.duration_seconds
