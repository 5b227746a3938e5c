"""`mlrun doctor`: find the damaged entries of a file store and, on request, quarantine them.

MLflow's own client stops at the first run it cannot read, so one torn file hides a whole
store from it (and from its UI). `examine` applies the rules of `tracking.damage` to every
experiment, run, param, tag and metric file; `quarantine` moves each damaged entry (a run or
an experiment whose meta.yaml is unreadable, a param or tag that is not UTF-8, a metric file
with no readable point) to the same relative place under `<store>/.damaged.trash/`, and
rewrites a metric file without its torn lines, keeping the original there. Nothing is deleted:
a user who mends a file can move it back.

Why `.damaged.trash` and not `.damaged`: MLflow's file store takes every other folder at the
top of the store for an experiment and fails on a name that is not a valid experiment id
(`search_experiments` raises "Invalid experiment ID: '.damaged'"); it skips folders whose
name ends in `.trash`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mlrun_cli.core.atomic import copy_atomic, write_atomic
from mlrun_cli.errors import StoreError
from mlrun_cli.tracking.damage import (
    DamagedFile,
    check_experiment_meta,
    check_run_meta,
    entry_label,
    load_meta,
    metric_points,
    read_utf8,
)
from mlrun_cli.tracking.stored_run import files_below

QUARANTINE = ".damaged.trash"
TRASH = ".trash"
META = "meta.yaml"


@dataclass(frozen=True)
class Finding:
    label: str  # mlruns/0/<run id>/params/alpha: the entry as the user's store names it
    reason: str
    path: Path  # what the fix moves, or rewrites
    keep_readable_lines: bool = False  # a metric file: drop only its torn lines

    def as_json(self) -> dict[str, object]:
        action = "drop torn lines" if self.keep_readable_lines else "quarantine"
        return {"entry": self.label, "reason": self.reason, "fix": action}


@dataclass(frozen=True)
class DoctorReport:
    store: Path
    findings: list[Finding]
    quarantined: dict[str, Path]  # label -> where the damaged original now is

    @property
    def quarantine(self) -> Path:
        return self.store / QUARANTINE


def doctor(store: Path, fix: bool) -> DoctorReport:
    if not store.is_dir():
        raise StoreError(f"no tracking store at {store}")
    findings = examine(store)
    moved = {f.label: quarantine(store, f) for f in findings} if fix else {}
    return DoctorReport(store, findings, moved)


def examine(store: Path) -> list[Finding]:
    """Every damaged entry, in store order; a damaged experiment hides nothing below it."""
    findings: list[Finding] = []
    for experiment_dir in _experiment_dirs(store):
        try:
            check_experiment_meta(load_meta(experiment_dir / META))
        except DamagedFile as exc:
            label = entry_label(experiment_dir, 1)
            findings.append(Finding(label, f"meta.yaml unreadable ({exc.reason})", experiment_dir))
            continue
        findings += _damaged_values(experiment_dir / "tags", experiment_dir, 1)
        for run_dir in sorted(d for d in experiment_dir.iterdir() if (d / META).is_file()):
            findings += _examine_run(run_dir)
    return findings


def _experiment_dirs(store: Path) -> Iterator[Path]:
    for parent in (store, store / TRASH):
        if parent.is_dir():
            yield from sorted(d for d in parent.iterdir() if d.name.isdigit() and d.is_dir())


def _examine_run(run_dir: Path) -> list[Finding]:
    try:
        check_run_meta(load_meta(run_dir / META), run_dir)
    except DamagedFile as exc:
        return [Finding(entry_label(run_dir, 2), f"meta.yaml unreadable ({exc.reason})", run_dir)]
    findings = _damaged_values(run_dir / "params", run_dir, 2)
    findings += _damaged_values(run_dir / "tags", run_dir, 2)
    for key, path in files_below(run_dir / "metrics"):
        label = f"{entry_label(run_dir, 2)}/metrics/{key}"
        try:
            points, torn = metric_points(read_utf8(path.read_bytes()))
        except DamagedFile as exc:
            findings.append(Finding(label, f"unreadable ({exc.reason})", path))
            continue
        if not points:
            findings.append(Finding(label, "no readable point", path))
        elif torn:
            lines = ", ".join(map(str, torn))
            findings.append(Finding(label, f"torn line {lines}", path, keep_readable_lines=True))
    return findings


def _damaged_values(directory: Path, owner: Path, depth: int) -> list[Finding]:
    findings = []
    for key, path in files_below(directory):
        try:
            read_utf8(path.read_bytes())
        except DamagedFile as exc:
            label = f"{entry_label(owner, depth)}/{directory.name}/{key}"
            findings.append(Finding(label, f"unreadable ({exc.reason})", path))
    return findings


def quarantine(store: Path, finding: Finding) -> Path:
    """Move the damaged entry aside (or a copy, for a metric file that keeps its readable
    lines) to the same relative place under the quarantine folder; returns where it went."""
    target = _free_place(store / QUARANTINE / finding.path.relative_to(store))
    target.parent.mkdir(parents=True, exist_ok=True)
    if not finding.keep_readable_lines:
        os.replace(finding.path, target)
        return target
    copy_atomic(finding.path, target)
    text = finding.path.read_bytes().decode("utf-8")
    _, torn = metric_points(text)
    kept = [line for n, line in enumerate(text.splitlines(), start=1) if n not in set(torn)]
    write_atomic(finding.path, "".join(f"{line}\n" for line in kept))
    return target


def _free_place(target: Path) -> Path:
    """`target`, or `target.1`, `target.2` ... when an earlier fix already put one there."""
    candidate, number = target, 0
    while candidate.exists():
        number += 1
        candidate = target.with_name(f"{target.name}.{number}")
    return candidate
