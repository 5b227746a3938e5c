"""A derived index of an experiment's runs by start time, so listing the newest is cheap.

    mlruns/<experiment>/.mlrun-run-index     one line per run: "<start_time> <run_id>"

The run folders stay the only source of truth; this file can be deleted at any time and is
rebuilt from them. A run created by mlrun adds its line with one O_APPEND write (about one
small write per run; lines of concurrent writers never interleave). Before the index is used,
the experiment's folder names are compared with it (a count and a digest of the names, without
keeping them): runs written by MLflow itself, or removed behind mlrun's back, make it rebuild
the file from the folders, replacing it atomically. Start times never change once a run exists;
a reader that still finds one that differs from its meta.yaml drops the file.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

INDEX = ".mlrun-run-index"
_RUN_ID = re.compile(r"[0-9a-f]{32}")
UNREADABLE = -1  # the start time recorded for a run whose meta.yaml could not be read


def record_run(experiment_dir: Path, run_id: str, start_time: int) -> None:
    """Add one run; never fails the run (the index is rebuilt when it misses one)."""
    line = f"{start_time} {run_id}\n".encode()
    with contextlib.suppress(OSError):
        descriptor = os.open(experiment_dir / INDEX, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(descriptor, line)
        finally:
            os.close(descriptor)


def drop_index(experiment_dir: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(experiment_dir / INDEX)


def newest_first(
    experiment_dir: Path, start_of: Callable[[str], int | None], starts: dict[str, int]
) -> list[str]:
    """The ids of the experiment's run folders, newest first (ties: by id); fills `starts`
    with each one's start time.

    `start_of(run_id)` reads a run's start time from its meta.yaml (None: unreadable); it is
    called only for runs the index does not know yet.
    """
    starts.update(_read(experiment_dir))
    count, digest = _folders(experiment_dir)
    if count != len(starts) or digest != _digest(starts):
        rebuilt = _rebuild(experiment_dir, starts, start_of)
        starts.clear()
        starts.update(rebuilt)
    order = sorted(starts)
    order.sort(key=starts.__getitem__, reverse=True)  # stable: equal times stay by id
    return order


def _read(experiment_dir: Path) -> dict[str, int]:
    starts: dict[str, int] = {}
    try:
        with open(experiment_dir / INDEX, "rb") as handle:
            data = handle.read()
    except OSError:
        return starts
    for line in data.split(b"\n"):
        start, _, run_id = line.partition(b" ")
        if len(run_id) == 32:  # a torn last line is ignored, and healed by the rebuild
            with contextlib.suppress(ValueError):
                starts[run_id.decode("ascii")] = int(start)
    return starts


def _run_folders(experiment_dir: Path) -> Iterator[str]:
    with os.scandir(experiment_dir) as entries:
        for entry in entries:
            if len(entry.name) == 32 and _RUN_ID.fullmatch(entry.name) and entry.is_dir():
                yield entry.name


def _folders(experiment_dir: Path) -> tuple[int, int]:
    count = digest = 0
    for name in _run_folders(experiment_dir):
        count += 1
        digest ^= hash(name)
    return count, digest


def _digest(starts: dict[str, int]) -> int:
    digest = 0
    for name in starts:
        digest ^= hash(name)
    return digest


def _rebuild(
    experiment_dir: Path, known: dict[str, int], start_of: Callable[[str], int | None]
) -> dict[str, int]:
    starts = {}
    for name in _run_folders(experiment_dir):
        start = known.get(name)
        if start is None:
            found = start_of(name)
            start = UNREADABLE if found is None else found
        starts[name] = start
    text = "".join(f"{start} {name}\n" for name, start in starts.items())
    temporary = experiment_dir / f"{INDEX}.{os.getpid()}.tmp"
    with contextlib.suppress(OSError):
        temporary.write_text(text, encoding="ascii")
        os.replace(temporary, experiment_dir / INDEX)
    return starts
