"""What makes an entry of the file store damaged, in the words of the one line that names it.

A crash or a full disk under another writer (mlrun itself replaces files whole) can leave an
empty, half-written, zero-filled or non-UTF-8 meta.yaml, a metric file with a torn last line,
or a param cut inside a UTF-8 character. The reading path skips what it cannot read, with one
warning naming it (`mlruns/0/<id>: meta.yaml unreadable (empty); skipped`), and goes on with
the rest; `mlrun doctor` finds every such entry and quarantines it. The rules follow what
MLflow's own file store can read, so that an entry mlrun calls healthy MLflow reads too.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlrun_cli.tracking.entities import ACTIVE, DELETED, RunStatus
from mlrun_cli.tracking.meta_files import MetaFormatError, parse_meta

TRASH = ".trash"
REQUIRED_RUN_FIELDS = ("artifact_uri", "experiment_id", "run_id", "start_time", "user_id")
REQUIRED_EXPERIMENT_FIELDS = ("artifact_location", "experiment_id", "name")


class DamagedFile(Exception):
    """A file of the store that cannot be read as what it should be; `reason` says how."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def entry_label(path: Path, depth: int) -> str:
    """`mlruns/0/<id>`: the store's folder name and the last `depth` parts (`.trash` kept)."""
    parts = path.parts
    count = depth + 1
    if len(parts) > count and parts[-count] == TRASH:
        count += 1
    return "/".join(parts[-count:])


def load_meta(path: Path) -> dict[str, Any]:
    """A meta.yaml as a mapping, or DamagedFile saying why it is not one."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DamagedFile(exc.strerror or type(exc).__name__) from None
    if not raw.strip():
        raise DamagedFile("empty")
    if not raw.strip(b"\0"):
        raise DamagedFile("zero-filled")
    text = read_utf8(raw)
    if "\0" in text:
        raise DamagedFile("holds NUL bytes, a torn write")
    try:
        data = parse_meta(text)
    except (MetaFormatError, RecursionError, ValueError) as exc:
        raise DamagedFile(f"not YAML: {exc}") from None
    if not isinstance(data, dict):
        raise DamagedFile("not a mapping")
    return data


def read_utf8(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DamagedFile(f"not UTF-8 at byte {exc.start}") from None


def check_run_meta(meta: Mapping[str, Any], run_dir: Path) -> None:
    """A run's meta.yaml holds every field MLflow needs, each of the right kind."""
    _check_fields(meta, REQUIRED_RUN_FIELDS)
    if str(meta["run_id"]) != run_dir.name:
        raise DamagedFile(f"run_id {str(meta['run_id'])[:40]!r} is not its folder's name")
    if not _is_int(meta["start_time"]):
        raise DamagedFile("start_time is not a number")
    if meta.get("end_time") is not None and not _is_int(meta["end_time"]):
        raise DamagedFile("end_time is not a number")
    status = meta.get("status", int(RunStatus.RUNNING))
    if not _is_int(status) or status not in {int(s) for s in RunStatus}:
        raise DamagedFile("status is not a run status")
    if meta.get("lifecycle_stage", ACTIVE) not in (ACTIVE, DELETED):
        raise DamagedFile("lifecycle_stage is neither active nor deleted")


def check_experiment_meta(meta: Mapping[str, Any]) -> None:
    _check_fields(meta, REQUIRED_EXPERIMENT_FIELDS)
    if meta.get("lifecycle_stage", ACTIVE) not in (ACTIVE, DELETED):
        raise DamagedFile("lifecycle_stage is neither active nor deleted")


def _check_fields(meta: Mapping[str, Any], required: tuple[str, ...]) -> None:
    missing = [name for name in required if meta.get(name) is None]
    if missing:
        raise DamagedFile(f"half-written: no {', '.join(missing)}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def metric_point(line: str) -> tuple[int, float, int]:
    """(timestamp, value, step) of one line, as MLflow reads it; ValueError when torn."""
    fields = line.strip().split(" ")
    if len(fields) not in (2, 3, 5):
        raise ValueError(f"{len(fields)} fields")
    step = int(fields[2]) if len(fields) == 3 else 0  # MLflow's rule, for 5 fields too
    return int(fields[0]), float(fields[1]), step


def metric_points(text: str) -> tuple[list[tuple[int, float, int]], list[int]]:
    """The readable points of a metric file, and the (1-based) numbers of the torn lines."""
    points, torn = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            points.append(metric_point(line))
        except ValueError:
            torn.append(number)
    return points, torn
