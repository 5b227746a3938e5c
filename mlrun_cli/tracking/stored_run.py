"""A run as it lies in the file store, read lazily: a filter on one metric reads one file.

Latest metric values follow MLflow: the point with the largest (step, timestamp, value).
A damaged file (see tracking.damage) is left out with one warning naming it, and listed in
`damage`, so the rest of the run is still shown.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

from mlrun_cli.core.atomic import is_temporary
from mlrun_cli.tracking.damage import DamagedFile, entry_label, metric_points, read_utf8
from mlrun_cli.tracking.entities import RunInfo

log = logging.getLogger(__name__)


class StoredRun:
    def __init__(
        self,
        directory: Path,
        info: RunInfo,
        lifecycle_deleted_time: int | None = None,
        damage: tuple[str, ...] = (),
    ):
        self.directory = directory
        self.info = info
        self.deleted_time = lifecycle_deleted_time
        self.damage = list(damage)  # what could not be read: "meta.yaml unreadable (empty)"
        self._reported: set[str] = set()

    def _report(self, what: str) -> None:
        """One warning per damaged file, however often it is read."""
        if what not in self.damage:
            self.damage.append(what)
        if what not in self._reported:
            self._reported.add(what)
            log.warning("%s: %s; skipped", entry_label(self.directory, 2), what)

    def attribute(self, key: str) -> Any:
        return self.info.attribute(key)

    @cached_property
    def params(self) -> dict[str, str]:
        return read_values(self.directory / "params", self._damaged_value("params"))

    @cached_property
    def tags(self) -> dict[str, str]:
        return read_values(self.directory / "tags", self._damaged_value("tags"))

    def _damaged_value(self, section: str) -> Callable[[str, str], None]:
        return lambda key, reason: self._report(f"{section}/{key} unreadable ({reason})")

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
        path = self.directory / section / key
        try:
            return read_utf8(path.read_bytes())
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        except (DamagedFile, OSError) as exc:
            reason = exc.reason if isinstance(exc, DamagedFile) else str(exc.strerror)
            self._report(f"{section}/{key} unreadable ({reason})")
            return None

    def metric_history(self, key: str, path: Path | None = None) -> list[tuple[int, float, int]]:
        """(timestamp, value, step) per point, in logging order."""
        path = path or self.directory / "metrics" / key
        try:
            text = read_utf8(path.read_bytes())
        except OSError:
            return []
        except DamagedFile as exc:
            self._report(f"metrics/{key} unreadable ({exc.reason})")
            return []
        points, torn = metric_points(text)
        if torn:
            lines = ", ".join(map(str, torn[:3])) + (" ..." if len(torn) > 3 else "")
            self._report(f"metrics/{key} torn at line {lines}")
        return points

    @property
    def duration_seconds(self) -> float | None:
        return self.info.duration_seconds


def _plain_key(key: str) -> bool:
    """A key that names a file below its folder (no empty, `.` or `..` parts, no temporary)."""
    return all(part not in ("", ".", "..") and not is_temporary(part) for part in key.split("/"))


def read_values(
    directory: Path, report: Callable[[str, str], None] | None = None
) -> dict[str, str]:
    """Params or tags: one file per key, keys with `/` as sub-directories. A value that is not
    UTF-8 (a torn write) is left out and reported (to `report`, else as a warning)."""
    values = {}
    for key, path in files_below(directory):
        try:
            values[key] = read_utf8(path.read_bytes())
        except (DamagedFile, OSError) as exc:
            reason = exc.reason if isinstance(exc, DamagedFile) else str(exc.strerror)
            if report is None:
                log.warning("%s: unreadable (%s); skipped", entry_label(path, 3), reason)
            else:
                report(key, reason)
    return values


def files_below(directory: Path) -> list[tuple[str, Path]]:
    """(key, path) of the files below `directory`, sorted, without the temporaries of writes
    in progress."""
    found: list[tuple[str, Path]] = []
    _collect(str(directory), "", found)
    return sorted(found)


def _collect(folder: str, prefix: str, found: list[tuple[str, Path]]) -> None:
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        if is_temporary(entry.name):
            continue
        if entry.is_dir():
            _collect(entry.path, f"{prefix}{entry.name}/", found)
        else:
            found.append((prefix + entry.name, Path(entry.path)))
