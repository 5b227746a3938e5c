"""A sweep's plan: what was asked, every point planned and type-checked, and which points
write the same output. Plain data and pure functions, read by the schedulers and the sweep."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from mlrun_cli.envs import BuildProgress, SilentProgress
from mlrun_cli.project.params import ResolvedParameter
from mlrun_cli.run.plan import RunPlan, RunRequest
from mlrun_cli.sweeps.grid import Grid
from mlrun_cli.tracking.entities import RunInfo
from mlrun_cli.tracking.search import OrderBy
from mlrun_cli.tracking.tags import INDEX_TAG, PARENT_TAG


@dataclass(frozen=True)
class SweepRequest:
    run: RunRequest  # its `parameters` are the grid's `-P name=VALUES` items
    zipped: bool = False
    max_runs: int = 1000
    jobs: int = 1
    fail_fast: bool = False
    backend: str = "local"  # `run.backend_config` configures a job backend
    reuse: str | None = None  # None, "skip" or "record"
    metrics: Sequence[str] = ()
    order_by: str | None = None


@dataclass(frozen=True)
class SweepPoint:
    index: int  # 1-based, in grid order
    values: Mapping[str, str]
    plan: RunPlan


@dataclass(frozen=True)
class SharedOutputs:
    """Points that write the same output: point index -> its group (only points sharing one
    with another are listed), and per group the parameter and path first found shared."""

    groups: Mapping[int, int] = field(default_factory=dict)
    shared: Mapping[int, tuple[str, str]] = field(default_factory=dict)

    def among(self, indexes: Collection[int]) -> SharedOutputs:
        """Only the groups two or more of these points still share (the rest were reused)."""
        counts: dict[int, int] = {}
        for index in indexes:
            if index in self.groups:
                counts[self.groups[index]] = counts.get(self.groups[index], 0) + 1
        kept = {group for group, count in counts.items() if count > 1}
        return SharedOutputs(
            {i: g for i, g in self.groups.items() if i in indexes and g in kept},
            {g: what for g, what in self.shared.items() if g in kept},
        )

    def message(self) -> str:
        listing = ", ".join(f"{name} ({path})" for name, path in self.shared.values())
        plural = "s" if len(self.shared) > 1 else ""
        who = "they run" if len(self.shared) == 1 else "children sharing one run"
        return (
            f"children share output{plural} {listing}; {who} one at a time so each records "
            "its own output"
        )


@dataclass(frozen=True)
class SweepPlan:
    base: RunPlan
    grid: Grid
    points: tuple[SweepPoint, ...]
    backend: str
    jobs: int
    fail_fast: bool
    reuse: str | None
    metrics: tuple[str, ...]
    order: OrderBy | None
    shared: SharedOutputs = field(default_factory=SharedOutputs)


@dataclass(frozen=True)
class SweepOutput:
    stdout: IO[bytes] | None = None
    stderr: IO[bytes] | None = None
    progress: BuildProgress = field(default_factory=SilentProgress)


def shared_outputs(points: Mapping[int, Sequence[ResolvedParameter]], cwd: Path) -> SharedOutputs:
    """Which points (index -> its resolved parameters) write the same output: an output `path`
    naming the same file, or one inside another's folder (relative paths are from `cwd`)."""
    writes = [
        (index, parameter.name, Path(os.path.normpath(cwd / parameter.value)))
        for index, parameters in points.items()
        for parameter in parameters
        if parameter.role == "output" and parameter.type == "path" and parameter.value
    ]
    owners: dict[Path, tuple[int, str]] = {}  # path -> the first point writing it, and how
    for index, name, path in writes:
        owners.setdefault(path, (index, name))
    roots = {index: index for index in points}

    def root(index: int) -> int:
        while roots[index] != index:
            roots[index] = roots[roots[index]]
            index = roots[index]
        return index

    reasons: list[tuple[int, str, Path]] = []
    for index, _, path in writes:
        for folder in (path, *path.parents):
            owner = owners.get(folder)
            if owner is not None and owner[0] != index:
                roots[root(index)] = root(owner[0])
                reasons.append((owner[0], owner[1], folder))
    groups = {index: root(index) for index in roots}
    sizes = Counter(groups.values())
    shared: dict[int, tuple[str, str]] = {}
    for writer, name, folder in reasons:
        shared.setdefault(groups[writer], (name, _shown(folder, cwd)))
    return SharedOutputs({i: g for i, g in groups.items() if sizes[g] > 1}, shared)


def _shown(path: Path, cwd: Path) -> str:
    return str(path.relative_to(cwd)) if path.is_relative_to(cwd) else str(path)


def label(point: Mapping[str, str]) -> str:
    return " ".join(f"{name}={value}" for name, value in point.items())


def child_tags(parent: RunInfo, point: SweepPoint) -> dict[str, str]:
    return {PARENT_TAG: parent.run_id, INDEX_TAG: str(point.index)}
