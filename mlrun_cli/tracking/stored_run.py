"""A run as it lies in the file store, read lazily: a filter on one metric reads one file.

Latest metric values follow MLflow: the point with the largest (step, timestamp, value).
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Any

from mlrun_cli.tracking.entities import RunInfo


class StoredRun:
    def __init__(self, directory: Path, info: RunInfo, lifecycle_deleted_time: int | None = None):
        self.directory = directory
        self.info = info
        self.deleted_time = lifecycle_deleted_time

    def attribute(self, key: str) -> Any:
        info = self.info
        return {
            "run_id": info.run_id,
            "run_name": info.run_name,
            "status": info.status.name,
            "user_id": info.user_id,
            "artifact_uri": info.artifact_uri,
            "start_time": info.start_time,
            "end_time": info.end_time,
        }[key]

    @cached_property
    def params(self) -> dict[str, str]:
        return read_values(self.directory / "params")

    @cached_property
    def tags(self) -> dict[str, str]:
        return read_values(self.directory / "tags")

    @cached_property
    def metrics(self) -> dict[str, float]:
        latest = {}
        for key, path in files_below(self.directory / "metrics"):
            points = self.metric_history(key, path)
            if points:
                latest[key] = max((p[2], p[0], p[1]) for p in points)[2]
        return latest

    def metric(self, key: str) -> float | None:
        """One metric's latest value: a filter on it reads its one file, not the whole folder."""
        if "metrics" in self.__dict__ or not _plain_key(key):
            return self.metrics.get(key)
        points = self.metric_history(key)
        return max((p[2], p[0], p[1]) for p in points)[2] if points else None

    def param(self, key: str) -> str | None:
        return self._value("params", key)

    def tag(self, key: str) -> str | None:
        return self._value("tags", key)

    def _value(self, section: str, key: str) -> str | None:
        if section in self.__dict__ or not _plain_key(key):
            values: dict[str, str] = getattr(self, section)
            return values.get(key)
        try:
            with open(os.path.join(self.directory, section, key), encoding="utf-8") as handle:
                return handle.read()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    def metric_history(self, key: str, path: Path | None = None) -> list[tuple[int, float, int]]:
        """(timestamp, value, step) per point, in logging order."""
        points = []
        try:
            with open(path or os.path.join(self.directory, "metrics", key), encoding="utf-8") as f:
                text = f.read()
        except OSError:
            return []
        for line in text.splitlines():
            fields = line.split()
            if len(fields) >= 2:
                step = int(fields[2]) if len(fields) > 2 else 0
                points.append((int(fields[0]), float(fields[1]), step))
        return points

    @property
    def duration_seconds(self) -> float | None:
        if self.info.end_time is None:
            return None
        return (self.info.end_time - self.info.start_time) / 1000


def _plain_key(key: str) -> bool:
    """A key that names a file below its folder (no empty, dot or dot-dot parts)."""
    return all(part and not part.startswith(".") for part in key.split("/"))


def read_values(directory: Path) -> dict[str, str]:
    """Params or tags: one file per key, keys with `/` as sub-directories."""
    values = {}
    for key, path in files_below(directory):
        with open(path, encoding="utf-8") as handle:
            values[key] = handle.read()
    return values


def files_below(directory: Path) -> list[tuple[str, Path]]:
    """(key, path) of the files below `directory`, sorted; dot-files are temporaries."""
    found: list[tuple[str, Path]] = []
    _collect(str(directory), "", found)
    return sorted(found)


def _collect(folder: str, prefix: str, found: list[tuple[str, Path]]) -> None:
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            _collect(entry.path, f"{prefix}{entry.name}/", found)
        else:
            found.append((prefix + entry.name, Path(entry.path)))
