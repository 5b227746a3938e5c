"""From `-P name=value` pairs to the final, safely quoted command of an entry point.

Everything is checked here, before a run exists: malformed pairs, every missing required
parameter at once, and every value against its declared type.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from fnmatch import fnmatch
from pathlib import Path

from mlrun_cli.core.credentials import display_uri
from mlrun_cli.core.uri import local_path_of
from mlrun_cli.errors import ParameterError
from mlrun_cli.project.param_types import (
    CONVERTERS,
    LENIENT_DEFAULT_TYPES,
    ConversionContext,
    RemoteFetch,
)
from mlrun_cli.project.spec import EntryPoint
from mlrun_cli.project.template import append_extra, render
from mlrun_cli.tracking.keys import clash_problem, key_problem, text_encoding_problem

UNDECLARED = "undeclared"
# Parameters whose names look like credentials are passed on but recorded as MASK.
SECRET_PATTERNS = ("*password*", "*token*", "*secret*", "*key")
MASK = "***"


def is_secret(name: str, extra_names: Collection[str] = ()) -> bool:
    lowered = name.lower()
    return name in extra_names or any(fnmatch(lowered, pattern) for pattern in SECRET_PATTERNS)


@dataclass(frozen=True)
class ResolvedParameter:
    name: str
    type: str  # a declared type, or "undeclared" for a -P the entry point does not declare
    value: str
    from_default: bool = False
    secret: bool = False
    # "output": a `path` the run writes (declared `role: output`, or naming nothing yet); its
    # digest is taken after the run, not before
    role: str = "input"
    source: str = ""  # the artifact URI a `path` input was downloaded from (value: the copy)

    @property
    def recorded_value(self) -> str:
        """What may be written down: the value (the URI for a downloaded input, as MLflow
        logs it), or MASK for a secret."""
        return MASK if self.secret else (self.source or self.value)


@dataclass(frozen=True)
class ResolvedCommand:
    """The command exactly as bash will receive it, and the values that went into it."""

    command: str
    parameters: tuple[ResolvedParameter, ...]
    display_command: str = ""  # the command with secret values masked: the one to record
    template: str = ""

    def values(self) -> dict[str, str]:
        return {p.name: p.value for p in self.parameters}

    def recorded_values(self) -> dict[str, str]:
        return {p.name: p.recorded_value for p in self.parameters}

    def secret_values(self) -> list[str]:
        return [p.value for p in self.parameters if p.secret and p.value]

    def relocated(self, path_map: Sequence[tuple[str, str]]) -> ResolvedCommand:
        """The command as seen from inside an environment that mounts host folders elsewhere
        (a container): path and uri values under a mapped folder point to its mount. The
        recorded parameters keep the host paths, where the data can be found and digested."""
        if not path_map:
            return self
        moved = [
            replace(p, value=_relocate(p.value, path_map)) if p.type in ("path", "uri") else p
            for p in self.parameters
        ]
        return replace(
            self,
            command=_render(self.template, moved, masked=False),
            display_command=_render(self.template, moved, masked=True),
        )


def parse_assignments(items: Sequence[str]) -> dict[str, str]:
    """`["a=1", "b=x=y"]` -> `{"a": "1", "b": "x=y"}`; a repeated name is refused, as in MLflow."""
    parsed: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep:
            raise ParameterError(f"-P {item!r}: expected NAME=VALUE")
        check_key(name, f"-P {item!r}")
        value_problem = text_encoding_problem(value)
        if value_problem is not None:
            raise ParameterError(f"-P {name}: the value {value_problem}")
        if name in parsed:
            raise ParameterError(f"-P {name}: given twice ({parsed[name]!r} and {value!r})")
        parsed[name] = value
    return parsed


def check_key(name: str, where: str) -> None:
    """A key must be storable as a file-store path and harmless on a command line."""
    problem = key_problem(name)
    if problem is not None:
        raise ParameterError(f"{where}: invalid name {name!r}: {problem}")


def check_no_clash(names: Collection[str]) -> None:
    """`x` and `x/y` cannot both be params: one would have to be a file and a folder."""
    problem = clash_problem(names)
    if problem is not None:
        raise ParameterError(f"parameters {problem}")


def resolve_command(
    entry: EntryPoint,
    given: Mapping[str, str],
    invocation_dir: Path,
    project_dir: Path,
    secret_names: Collection[str] = (),
    fetch: RemoteFetch | None = None,
) -> ResolvedCommand:
    """Apply defaults and types, then render. User values are relative to where mlrun was
    invoked; defaults are relative to the project, where the author wrote them. `fetch`
    downloads a `path` value that is an artifact URI (else one is refused)."""
    missing = [p.name for p in entry.parameters if p.required and p.name not in given]
    if missing:
        raise ParameterError(
            f"entry point '{entry.name}' needs: {', '.join(missing)} "
            f"(pass {' '.join(f'-P {m}=...' for m in missing)})"
        )
    resolved: list[ResolvedParameter] = []
    errors: list[str] = []
    for param in entry.parameters:
        from_default = param.name not in given
        raw = param.default if from_default else given[param.name]
        assert raw is not None  # required parameters without a value were reported above
        context = ConversionContext(project_dir if from_default else invocation_dir, fetch)
        try:
            value = CONVERTERS[param.type](raw, context)
        except ValueError as exc:
            if not (from_default and param.type in LENIENT_DEFAULT_TYPES):
                origin = "default of " if from_default else ""
                errors.append(f"{origin}parameter '{param.name}' ({param.type}): {exc}")
                continue
            value = raw  # validation warned about it; MLflow passes it as written
        secret = is_secret(param.name, secret_names)
        output = param.role == "output" or (param.type == "path" and not Path(value).exists())
        role = "output" if output else "input"
        downloaded = param.type == "path" and local_path_of(raw) is None
        source = display_uri(raw) if downloaded else ""  # never a user:password@ recorded
        resolved.append(
            ResolvedParameter(param.name, param.type, value, from_default, secret, role, source)
        )
    if errors:
        raise ParameterError("\n".join(errors))
    declared = {p.name for p in entry.parameters}
    extra = {k: v for k, v in given.items() if k not in declared}
    resolved.extend(
        ResolvedParameter(k, UNDECLARED, v, secret=is_secret(k, secret_names))
        for k, v in extra.items()
    )
    check_no_clash([p.name for p in resolved])
    return ResolvedCommand(
        command=_render(entry.command, resolved, masked=False),
        parameters=tuple(resolved),
        display_command=_render(entry.command, resolved, masked=True),
        template=entry.command,
    )


def _relocate(value: str, path_map: Sequence[tuple[str, str]]) -> str:
    for host, inside in sorted(path_map, key=lambda pair: len(pair[0]), reverse=True):
        host = host.rstrip("/")
        if value == host or value.startswith(host + "/"):
            return inside.rstrip("/") + value[len(host) :]
    return value


def _render(template: str, resolved: Sequence[ResolvedParameter], masked: bool) -> str:
    values = {p.name: MASK if masked and p.secret else p.value for p in resolved}
    extra = {p.name: values[p.name] for p in resolved if p.type == UNDECLARED}
    return append_extra(render(template, values), extra)
