"""The parameter types an entry point may declare, one converter each.

A converter takes the raw text (from `-P` or from the default, already `str()`-ed as MLflow
does) and returns the value that enters the command, or raises ValueError with a reason that
the caller wraps into a ParameterError naming the parameter.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from mlrun_cli.core.uri import local_path_of

_TRUE = frozenset({"true", "1", "yes", "y", "on"})
_FALSE = frozenset({"false", "0", "no", "n", "off"})


# An artifact URI -> the local path it was downloaded to; ValueError says why it could not be.
RemoteFetch = Callable[[str], str]


@dataclass(frozen=True)
class ConversionContext:
    """What a converter needs besides the value: the directory relative paths start from, and
    how a remote `path` value is downloaded (None: it is refused)."""

    base_dir: Path
    fetch: RemoteFetch | None = None


Converter = Callable[[str, ConversionContext], str]


def _string(value: str, _ctx: ConversionContext) -> str:
    return value


def _float(value: str, _ctx: ConversionContext) -> str:
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a number") from None
    if math.isnan(number):
        raise ValueError(f"{value!r} is not a number")
    return value


def _int(value: str, _ctx: ConversionContext) -> str:
    try:
        int(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an integer") from None
    return value


def _bool(value: str, _ctx: ConversionContext) -> str:
    """The value as given: a program may parse `1`/`0` with int() (MLflow passes it as is)."""
    if value.strip().lower() in _TRUE | _FALSE:
        return value
    raise ValueError(f"{value!r} is not a boolean (use true/false, yes/no or 1/0)")


def _path(value: str, ctx: ConversionContext) -> str:
    local = local_path_of(value)
    if local is None:
        if ctx.fetch is None:
            raise ValueError(
                f"{value!r} is a remote URI; only a single run (mlrun run, the Python API) "
                "downloads 'path' inputs, pass a local file or directory"
            )
        return ctx.fetch(value)
    absolute = Path(os.path.abspath(ctx.base_dir / os.path.expanduser(local)))
    if not absolute.exists() and not absolute.parent.is_dir():
        raise ValueError(f"no such file or directory: {absolute}")
    return str(absolute)


def _uri(value: str, ctx: ConversionContext) -> str:
    if local_path_of(value) == value:
        return os.path.abspath(ctx.base_dir / os.path.expanduser(value))
    return value


CONVERTERS: Mapping[str, Converter] = {
    "string": _string,
    "float": _float,
    "path": _path,
    "uri": _uri,
    "int": _int,
    "bool": _bool,
}

# Another spelling MLflow's own examples use for a type mlrun knows.
TYPE_ALIASES: Mapping[str, str] = {"str": "string"}


def known_type(declared: str) -> str | None:
    """The converter name for a declared type name, or None for a name mlrun does not know.

    MLflow checks no type name: an unknown one is passed through as a string, so mlrun runs it
    the same way and `validate` warns about it.
    """
    name = TYPE_ALIASES.get(declared, declared)
    return name if name in CONVERTERS else None


# Types whose values can be checked without touching the file system (used for defaults).
PURE_TYPES = frozenset({"string", "float", "int", "bool"})

# mlrun's own types, unknown to MLflow, which passes any default of theirs as written: a project
# written for MLflow may hold one that does not fit (`devices: {type: int, default: auto}`), so
# such a default is a warning and is passed unchanged; a value given with -P is still checked.
LENIENT_DEFAULT_TYPES = frozenset({"int", "bool"})
