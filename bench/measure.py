"""Timing one command at a time: wall clock and the peak RSS of its process tree."""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


class BenchError(Exception):
    """A command of a workload failed; the message says which and how."""


@dataclass(frozen=True)
class Sample:
    seconds: float
    peak_rss_mb: float


def measure(argv: Sequence[str], env: Mapping[str, str], cwd: Path) -> Sample:
    """Run once; os.wait4 gives the resources of exactly this child (and what it reaped)."""
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            errors.seek(0)
            tail = errors.read().decode(errors="replace").strip().splitlines()[-5:]
            raise BenchError(f"{' '.join(argv)} exited {process.returncode}: {' | '.join(tail)}")
    return Sample(elapsed, usage.ru_maxrss / 1024)


@dataclass(frozen=True)
class Summary:
    min: float
    median: float
    max: float
    peak_rss_mb: float

    @classmethod
    def of(cls, samples: Sequence[Sample]) -> Summary:
        seconds = [s.seconds for s in samples]
        return cls(
            min(seconds),
            statistics.median(seconds),
            max(seconds),
            max(s.peak_rss_mb for s in samples),
        )


def pair_ratio(slow: Sequence[Sample], fast: Sequence[Sample]) -> float:
    """The median of per-pair ratios (A B A B ...): drift over time cancels out pair by pair."""
    return statistics.median(a.seconds / b.seconds for a, b in zip(slow, fast, strict=True))


def pair_difference(slow: Sequence[Sample], fast: Sequence[Sample]) -> float:
    """The median of per-pair differences in seconds (what one side adds to the other)."""
    return statistics.median(a.seconds - b.seconds for a, b in zip(slow, fast, strict=True))
