"""A search's space: `-P name=SPACE` items turned into typed dimensions, checked against the
types the entry point declares before anything runs.

    loguniform(a, b)     a float between a and b (0 < a < b), sampled on a log scale
    uniform(a, b)        a float between a and b
    int(a, b)            an integer from a to b, both included
    choice(x, y, ...)    one of the values (a literal comma is written \\,)
    a,b,c                today's grid lists (and range(...), glob(...)): a choice
    x                    one value: the same in every trial

A `float` parameter takes any of them; an `int` parameter int(a, b) or values that are
integers; `bool`, `path` and `uri` only values (choice or fixed) that fit; a `string` or an
undeclared parameter anything.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from mlrun_cli.errors import ParameterError
from mlrun_cli.project.param_types import CONVERTERS, ConversionContext
from mlrun_cli.project.params import UNDECLARED
from mlrun_cli.project.spec import EntryPoint
from mlrun_cli.sweeps.grid import named_items, parse_values

FLOAT = "float"
INT = "int"
CHOICE = "choice"
FIXED = "fixed"

_FUNCTION = re.compile(r"^\s*(loguniform|uniform|int|choice)\((.*)\)\s*$", re.DOTALL)
_SPLIT = re.compile(r"(?<!\\),")
# Declared types that take numbers drawn from a range (besides text, which takes anything).
_RANGE_TYPES = {FLOAT: (FLOAT, INT), INT: (INT,)}
_TEXT_TYPES = ("string", UNDECLARED)


@dataclass(frozen=True)
class Dimension:
    """One parameter's space. `low`/`high` bound a FLOAT or INT range; `values` are a
    CHOICE's options or a FIXED value, as text (what the command receives)."""

    name: str
    spec: str  # as the user wrote it
    kind: str  # FLOAT, INT, CHOICE or FIXED
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    values: tuple[str, ...] = ()

    @property
    def searched(self) -> bool:
        """Whether the sampler chooses it (a fixed value is passed as it is)."""
        return self.kind != FIXED

    def contains(self, text: str) -> bool:
        """Whether a value given as text (an enqueued point, a recorded trial) is in the space."""
        if self.kind in (CHOICE, FIXED):
            return text in self.values
        try:
            number = float(text)
        except ValueError:
            return False
        if self.kind == INT and not number.is_integer():
            return False
        return self.low <= number <= self.high

    def sampler_value(self, text: str) -> float | int | str:
        """A value as text in the form the sampler holds it."""
        if self.kind == FLOAT:
            return float(text)
        if self.kind == INT:
            return int(float(text))
        return text


@dataclass(frozen=True)
class SearchSpace:
    dimensions: tuple[Dimension, ...]

    @property
    def searched(self) -> tuple[Dimension, ...]:
        return tuple(d for d in self.dimensions if d.searched)

    @property
    def fixed(self) -> dict[str, str]:
        return {d.name: d.values[0] for d in self.dimensions if not d.searched}

    def by_name(self) -> dict[str, Dimension]:
        return {d.name: d for d in self.dimensions}

    def sample_point(self) -> dict[str, str]:
        """One point inside the space (the fixed values, each choice's first value, a range's
        lowest integer if it has one): planning the run with it checks everything but the
        space, which `check_space` then checks against the declared types."""
        return {d.name: d.values[0] if d.values else _plain_sample(d) for d in self.dimensions}

    def as_json(self) -> dict[str, str]:
        return {d.name: d.spec for d in self.dimensions}


def _plain_sample(dimension: Dimension) -> str:
    """A number in the range that fits as many declared types as possible (1 rather than
    1.0, which an int parameter refuses)."""
    lowest = math.ceil(dimension.low)
    return str(lowest) if lowest <= dimension.high else format_value(dimension, dimension.low)


def parse_space(items: Sequence[str], invocation_dir: Path) -> SearchSpace:
    """Every `-P` item parsed; every malformed one reported at once."""
    dimensions: list[Dimension] = []
    problems: list[str] = []
    for name, spec in named_items(items, "SPACE", "give its space once"):
        try:
            dimensions.append(parse_dimension(name, spec, invocation_dir))
        except ParameterError as exc:
            problems.extend(exc.lines())
    if problems:
        raise ParameterError("\n".join(problems))
    return SearchSpace(tuple(dimensions))


def parse_dimension(name: str, spec: str, invocation_dir: Path) -> Dimension:
    function = _FUNCTION.match(spec)
    if function is None:
        values = parse_values(name, spec, invocation_dir)
        kind = CHOICE if len(set(values)) > 1 else FIXED
        return Dimension(name, spec, kind, values=tuple(dict.fromkeys(values)))
    kind, arguments = function.groups()
    if kind == CHOICE:
        values = tuple(part.strip().replace("\\,", ",") for part in _SPLIT.split(arguments))
        if not arguments.strip() or any(v == "" for v in values):
            raise ParameterError(f"-P {name}={spec}: choice() needs values, like choice(a,b)")
        return Dimension(name, spec, CHOICE, values=tuple(dict.fromkeys(values)))
    low, high = _bounds(name, spec, arguments)
    if kind == INT:
        if not (low.is_integer() and high.is_integer()):
            raise ParameterError(f"-P {name}={spec}: int(a, b) takes two integers")
        return Dimension(name, spec, INT, low, high)
    if kind == "loguniform" and low <= 0:
        raise ParameterError(f"-P {name}={spec}: loguniform(a, b) needs 0 < a")
    return Dimension(name, spec, FLOAT, low, high, log=kind == "loguniform")


def _bounds(name: str, spec: str, arguments: str) -> tuple[float, float]:
    parts = [part.strip() for part in arguments.split(",")]
    try:
        numbers = [float(part) for part in parts]
    except ValueError:
        numbers = []
    if len(numbers) != 2 or not all(math.isfinite(n) for n in numbers):
        function = spec.strip().partition("(")[0]
        raise ParameterError(f"-P {name}={spec}: expected {function}(a, b) with two numbers")
    low, high = numbers
    if low >= high:
        raise ParameterError(f"-P {name}={spec}: the lower bound must be below the upper one")
    return low, high


def format_value(dimension: Dimension, value: float | int | str) -> str:
    """A sampled value as the command receives it (an int without a decimal point)."""
    if dimension.kind == INT:
        return str(int(value))
    if dimension.kind == FLOAT:
        return repr(float(value))
    return str(value)


def check_space(space: SearchSpace, entry: EntryPoint, invocation_dir: Path) -> None:
    """Every dimension against its parameter's declared type: all problems at once."""
    declared = {p.name: p.type for p in entry.parameters}
    problems: list[str] = []
    for dimension in space.dimensions:
        problem = _type_problem(dimension, declared.get(dimension.name, UNDECLARED), invocation_dir)
        if problem is not None:
            problems.append(f"-P {dimension.name}={dimension.spec}: {problem}")
    if problems:
        raise ParameterError("\n".join(problems))


def _type_problem(dimension: Dimension, declared: str, invocation_dir: Path) -> str | None:
    if declared in _TEXT_TYPES:
        return None
    if dimension.kind in (FLOAT, INT):
        if dimension.kind in _RANGE_TYPES.get(declared, ()):
            return None
        fix = "use int(a, b)" if declared == INT else "list the values, like choice(a,b)"
        kind = "an int" if dimension.kind == INT else "a float"
        return f"parameter '{dimension.name}' is {declared}; {kind} range does not fit ({fix})"
    context = ConversionContext(invocation_dir)
    for value in dimension.values:
        try:
            CONVERTERS[declared](value, context)
        except ValueError as exc:
            return f"parameter '{dimension.name}' is {declared}: {exc}"
    return None


def parse_point(text: str, space: SearchSpace, what: str) -> dict[str, str]:
    """`a=1,b=2` (an --enqueue) as values of the searched dimensions, each inside its space;
    the ones it leaves out are chosen by the sampler."""
    dimensions = space.by_name()
    point: dict[str, str] = {}
    for item in _SPLIT.split(text):
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip().replace("\\,", ",")
        if not sep or not name:
            raise ParameterError(f"{what} {text!r}: expected NAME=VALUE,NAME=VALUE")
        dimension = dimensions.get(name)
        if dimension is None or not dimension.searched:
            searched = ", ".join(d.name for d in space.searched) or "none"
            raise ParameterError(
                f"{what} {text!r}: {name} is not searched (the searched parameters: {searched})"
            )
        if not dimension.contains(value):
            raise ParameterError(f"{what} {text!r}: {name}={value} is outside {dimension.spec}")
        point[name] = value
    return point


def trial_values(space: SearchSpace, sampled: Mapping[str, float | int | str]) -> dict[str, str]:
    """A trial's full point as text, in the order of the `-P` items."""
    by_name = space.by_name()
    values = {name: format_value(by_name[name], value) for name, value in sampled.items()}
    return {d.name: values.get(d.name, d.values[0] if d.values else "") for d in space.dimensions}
