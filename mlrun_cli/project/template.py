"""The command template of an entry point: `{name}` placeholders, `{{`/`}}` literal braces.

MLflow renders with `str.format(**quoted_values)`; this module parses the same syntax once so
that an unknown placeholder is found when the file is validated, not when the run starts.
"""

from __future__ import annotations

import shlex
import string
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class _Field:
    literal: str
    name: str | None


def parse_template(command: str) -> list[_Field]:
    """Split a template into literals and fields; ValueError for malformed braces.

    Conversions and format specs (`{a!r}`, `{a:>9}`) are refused: they would act on the
    quoted value and could undo the quoting.
    """
    fields = []
    for literal, name, spec, conversion in string.Formatter().parse(command):
        if name is not None and (name == "" or name.isdigit()):
            raise ValueError("a placeholder must name a parameter, like {alpha}")
        if name is not None and any(c in name for c in ".["):
            raise ValueError(f"placeholder {{{name}}} must be a plain parameter name")
        if name is not None and (spec or conversion):
            raise ValueError(f"placeholder {{{name}}}: conversions and format specs are refused")
        fields.append(_Field(literal, name))
    return fields


def placeholder_names(command: str) -> list[str]:
    """The parameter names a template refers to, in order of first use."""
    names: list[str] = []
    for field in parse_template(command):
        if field.name is not None and field.name not in names:
            names.append(field.name)
    return names


def render(command: str, values: Mapping[str, str]) -> str:
    """Substitute each placeholder by its shell-quoted value; values never reach bash raw."""
    parts = []
    for field in parse_template(command):
        parts.append(field.literal)
        if field.name is not None:
            parts.append(shlex.quote(values[field.name]))
    return "".join(parts)


def append_extra(command: str, extra: Mapping[str, str]) -> str:
    """Undeclared parameters go after the command as `--name value`, both quoted."""
    pieces = [command] + [f"--{shlex.quote(k)} {shlex.quote(v)}" for k, v in extra.items()]
    return " ".join(pieces)
