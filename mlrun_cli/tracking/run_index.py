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
    experiment_dir: Path, start_of: Callable[[str], int | None]
) -> Iterator[tuple[int, str]]:
    """(start time, run id) of the experiment's run folders, newest first (ties: by id).

    `start_of(run_id)` reads a run's start time from its meta.yaml (None: unreadable); it is
    called only for runs the index does not know yet. Each entry is held as one integer
    (start time, then the id's bits inverted, so that one descending sort orders both), which
    keeps 50,000 runs in about 3 MB.
    """
    packed, digest = _read(experiment_dir)
    count, folders = _folders(experiment_dir)
    if count != len(packed) or digest != folders:
        packed = _rebuild(experiment_dir, packed, start_of)
    packed.sort(reverse=True)
    for key in packed:
        yield _unpack(key)


_ID_BITS = 128
_ID_MASK = (1 << _ID_BITS) - 1


def _pack(start: int, run_id: str) -> int:
    return ((start - UNREADABLE) << _ID_BITS) | (_ID_MASK ^ int(run_id, 16))


def _unpack(key: int) -> tuple[int, str]:
    return (key >> _ID_BITS) + UNREADABLE, f"{_ID_MASK ^ (key & _ID_MASK):032x}"


def _read(experiment_dir: Path) -> tuple[list[int], int]:
    """The packed entries and the digest of their ids; read a line at a time."""
    packed: list[int] = []
    digest = 0
    try:
        handle = open(experiment_dir / INDEX, "rb")  # noqa: SIM115 (closed below)
    except OSError:
        return packed, digest
    with handle:
        for line in handle:
            start, _, run_id = line.rstrip(b"\n").partition(b" ")
            if len(run_id) != 32 or not line.endswith(b"\n"):
                continue  # a torn last line: the counts differ and the file is rebuilt
            try:
                name = run_id.decode("ascii")
                packed.append(_pack(int(start), name))
            except ValueError:
                continue
            digest ^= hash(name)
    return packed, digest


def _run_folders(experiment_dir: Path) -> Iterator[str]:
    with os.scandir(experiment_dir) as entries:
        for entry in entries:
            if len(entry.name) == 32 and _RUN_ID.fullmatch(entry.name) and entry.is_dir():
                yield entry.name


def _folders(experiment_dir: Path) -> tuple[int, int]:
    """How many run folders there are, and a digest of their names (kept nowhere)."""
    count = digest = 0
    for name in _run_folders(experiment_dir):
        count += 1
        digest ^= hash(name)
    return count, digest


def _rebuild(
    experiment_dir: Path, known: list[int], start_of: Callable[[str], int | None]
) -> list[int]:
    starts = dict(_unpack(key)[::-1] for key in known)
    packed = []
    lines = []
    for name in _run_folders(experiment_dir):
        start = starts.get(name)
        if start is None:
            found = start_of(name)
            start = UNREADABLE if found is None else found
        packed.append(_pack(start, name))
        lines.append(f"{start} {name}\n")
    temporary = experiment_dir / f"{INDEX}.{os.getpid()}.tmp"
    with contextlib.suppress(OSError):
        temporary.write_text("".join(lines), encoding="ascii")
        os.replace(temporary, experiment_dir / INDEX)
    return packed
