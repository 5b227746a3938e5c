"""A sweep's grid: `-P name=VALUES` items turned into the list of parameter points.

    a,b,c                  a list; a literal comma is written \\,
    range(start, stop, step)   numbers from start up to (not including) stop; step defaults to 1
    glob(data/*.csv)       the matching paths, sorted, relative to where mlrun was invoked
    x                      one value: the same in every point

The grid is the cross product of the lists, or with `zip` the lists paired element by element
(all of the same length, single values repeated). Its size is known before any point is made,
so an oversized grid is refused at once.
"""

from __future__ import annotations

import glob
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from itertools import product
from pathlib import Path

from mlrun_cli.errors import ParameterError, UsageError
from mlrun_cli.project.params import check_key

_FUNCTION = re.compile(r"^\s*(range|glob)\((.*)\)\s*$", re.DOTALL)
_SPLIT = re.compile(r"(?<!\\),")


@dataclass(frozen=True)
class SweepParam:
    name: str
    spec: str  # as the user wrote it
    values: tuple[str, ...]


@dataclass(frozen=True)
class Grid:
    params: tuple[SweepParam, ...]
    zipped: bool = False

    @property
    def size(self) -> int:
        if not self.params:
            return 1
        if self.zipped:
            return max(len(p.values) for p in self.params)
        return math.prod(len(p.values) for p in self.params)

    def points(self) -> list[dict[str, str]]:
        names = [p.name for p in self.params]
        rows: Iterable[tuple[str, ...]]
        if self.zipped:
            rows = zip(*(_repeated(p.values, self.size) for p in self.params), strict=True)
        else:
            rows = product(*(p.values for p in self.params))
        return [dict(zip(names, row, strict=True)) for row in rows]

    @property
    def varying(self) -> tuple[str, ...]:
        """The names whose value changes from point to point (the table's columns)."""
        return tuple(p.name for p in self.params if len(set(p.values)) > 1)

    def as_json(self) -> dict[str, object]:
        return {
            "mode": "zip" if self.zipped else "product",
            "size": self.size,
            "params": {p.name: p.spec for p in self.params},
        }


def named_items(items: Sequence[str], what: str, once: str) -> list[tuple[str, str]]:
    """(name, spec) of each `-P NAME=WHAT` item of a sweep or a search, each name a valid key
    given once (`once` says how to give several values instead)."""
    named: list[tuple[str, str]] = []
    for item in items:
        name, sep, spec = item.partition("=")
        name = name.strip()
        if not sep:
            raise ParameterError(f"-P {item!r}: expected NAME={what}")
        check_key(name, f"-P {item!r}")
        if name in (seen for seen, _ in named):
            raise ParameterError(f"-P {name}: given twice; {once}")
        named.append((name, spec))
    return named


def parse_grid(items: Sequence[str], invocation_dir: Path, zipped: bool, max_runs: int) -> Grid:
    """Every `-P` item parsed; a grid larger than `max_runs` is refused before it is built."""
    params = [
        SweepParam(name, spec, parse_values(name, spec, invocation_dir))
        for name, spec in named_items(items, "VALUES", "put all its values in one list")
    ]
    grid = Grid(tuple(params), zipped)
    if zipped:
        lengths = {p.name: len(p.values) for p in params if len(p.values) > 1}
        if len(set(lengths.values())) > 1:
            listing = ", ".join(f"{name} has {count}" for name, count in lengths.items())
            raise UsageError(f"--zip pairs lists of the same length: {listing}")
    if grid.size > max_runs:
        raise UsageError(
            f"the grid has {grid.size} points, more than --max-runs {max_runs}; "
            "narrow it or raise --max-runs"
        )
    return grid


def parse_values(name: str, spec: str, invocation_dir: Path) -> tuple[str, ...]:
    function = _FUNCTION.match(spec)
    if function is None:
        values = tuple(part.replace("\\,", ",") for part in _SPLIT.split(spec))
        if len(values) > 1 and any(v.strip() == "" for v in values):
            raise ParameterError(f"-P {name}={spec}: an empty value in the list")
        return values
    kind, arguments = function.groups()
    if kind == "glob":
        return _glob(name, arguments.strip(), invocation_dir)
    return _range(name, spec, arguments)


def _glob(name: str, pattern: str, invocation_dir: Path) -> tuple[str, ...]:
    if not pattern:
        raise ParameterError(f"-P {name}=glob(): give a pattern, like glob(data/*.csv)")
    absolute = Path(pattern).is_absolute()
    found = sorted(glob.glob(pattern, root_dir=None if absolute else invocation_dir))
    if not found:
        raise ParameterError(f"-P {name}=glob({pattern}): no file matches in {invocation_dir}")
    return tuple(found)


def _range(name: str, spec: str, arguments: str) -> tuple[str, ...]:
    parts = [part.strip() for part in arguments.split(",")]
    try:
        numbers = [Decimal(part) for part in parts]
    except InvalidOperation:
        numbers = []
    if not 2 <= len(numbers) <= 3 or not all(n.is_finite() for n in numbers):
        raise ParameterError(f"-P {name}={spec}: expected range(start, stop[, step]) with numbers")
    start, stop = numbers[0], numbers[1]
    step = numbers[2] if len(numbers) == 3 else Decimal(1)
    if step == 0:
        raise ParameterError(f"-P {name}={spec}: the step must not be 0")
    count = max(0, math.ceil((stop - start) / step))
    if count == 0:
        raise ParameterError(f"-P {name}={spec}: the range is empty")
    if count > 1_000_000:
        raise UsageError(f"-P {name}={spec}: {count} values, too many for a sweep")
    return tuple(_number(start + i * step) for i in range(count))


def _number(value: Decimal) -> str:
    """Decimal arithmetic, so range(0.1, 0.4, 0.1) gives 0.1 0.2 0.3, not 0.30000000000000004."""
    return format(value.normalize(), "f")


def _repeated(values: tuple[str, ...], size: int) -> tuple[str, ...]:
    return values * size if len(values) == 1 else values
