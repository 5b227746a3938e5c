"""An MLproject parsed once into an immutable model, after every check has passed.

Loading is MLflow's (PyYAML `safe_load`, file name matched case-insensitively, defaults turned
into strings with `str()`), the checks are stricter: the schema in `schemas/` plus what a schema
cannot say, and every problem is reported at once with its line.
"""

from __future__ import annotations

import logging
import os
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mlrun_cli.errors import EntryPointError, Problem, SourceError, SpecError
from mlrun_cli.project.checked_docs import load_checked
from mlrun_cli.project.located_doc import LocatedDoc
from mlrun_cli.project.param_types import (
    CONVERTERS,
    LENIENT_DEFAULT_TYPES,
    PURE_TYPES,
    ConversionContext,
    known_type,
)
from mlrun_cli.project.schema import format_path
from mlrun_cli.project.spec_text import not_regular_file, read_spec_text
from mlrun_cli.project.template import placeholder_names
from mlrun_cli.tracking.keys import clash_problem, key_problem

ENV_KEYS = ("docker_env", "python_env", "conda_env")  # in order of precedence
DEFAULT_PYTHON_ENV_FILE = "python_env.yaml"
DEFAULT_CONDA_FILE = "conda.yaml"
BARE_RUNNERS = {".py": "python", ".sh": "bash"}
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str  # the converter's name: `str` and names mlrun does not know become "string"
    default: str | None  # already str()-ed like MLflow; None means the user must pass it
    role: str = "input"  # mlrun extension: "output" names a file the run writes

    @property
    def required(self) -> bool:
        return self.default is None


@dataclass(frozen=True)
class EntryPoint:
    name: str
    command: str
    parameters: tuple[Parameter, ...] = ()


@dataclass(frozen=True)
class DockerEnv:
    image: str | None  # None when `dockerfile` builds it
    volumes: tuple[str, ...] = ()
    # (NAME, None) copies NAME from the host; (NAME, value) sets it.
    environment: tuple[tuple[str, str | None], ...] = ()
    dockerfile: str | None = None  # mlrun extension, relative to the project


@dataclass(frozen=True)
class EnvDecl:
    """Which environment the project asks for, and where that was said."""

    kind: str  # "python_env" | "conda_env" | "docker_env" | "uv_lock" | "none"
    file: Path | None = None
    docker: DockerEnv | None = None
    origin: str = ""


@dataclass(frozen=True)
class Project:
    directory: Path
    name: str | None
    mlproject: Path | None
    env: EnvDecl
    entry_points: Mapping[str, EntryPoint]
    warnings: tuple[Problem, ...] = ()  # accepted, as MLflow would, but worth a look


def find_mlproject(directory: Path) -> Path | None:
    """MLflow accepts any capitalisation of the file name. An entry of that name that is not
    a file (a folder, a FIFO, a dangling link) is returned too, so that reading it says so
    instead of the project silently running without its MLproject."""
    try:
        names = sorted(os.listdir(directory))
    except OSError as exc:
        raise SourceError(
            f"project directory {directory} cannot be read ({exc.strerror})"
        ) from None
    candidates = [directory / entry for entry in names if entry.lower() == "mlproject"]
    regular = [path for path in candidates if not_regular_file(path) is None]
    chosen = regular or candidates
    return chosen[0] if chosen else None


def display_path(path: Path, base: Path) -> str:
    """A path as a user would type it from `base`: relative when below it."""
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


def load_project(directory: Path, display_base: Path | None = None) -> Project:
    """Parse and check the project in `directory`; SpecError lists every problem found."""
    directory = directory.resolve()
    mlproject = find_mlproject(directory)
    if mlproject is None:
        return Project(directory, None, None, _env_beside(directory), {})
    label = display_path(mlproject, display_base or Path.cwd())
    doc, problems = load_checked(read_spec_text(mlproject, label), "mlproject", label, empty={})
    problems = problems + list(_semantic_problems(doc, label, directory))
    warnings = (*_env_warnings(doc, label), *_parameter_warnings(doc, label))
    for warning in warnings:  # said even beside errors: every problem at once
        log.warning("%s", warning)
    if problems:
        raise SpecError(problems)
    return replace(_build(doc.data, directory, mlproject), warnings=warnings)


def _semantic_problems(doc: LocatedDoc, label: str, directory: Path) -> Iterator[Problem]:
    """What the schema cannot say; defensive, since the data may also break the schema."""
    data = doc.data
    if not isinstance(data, dict):
        return
    present = [key for key in ENV_KEYS if key in data]  # MLflow counts even empty ones
    for key in present[1:]:
        others = ", ".join(present)
        yield Problem(
            label, doc.line_of((key,)), key, f"only one environment may be set ({others})"
        )
    for key in ("python_env", "conda_env"):
        value = data.get(key)
        if isinstance(value, str) and value and not (directory / value).is_file():
            yield Problem(label, doc.line_of((key,)), key, f"no file {value!r} in the project")
    docker = data.get("docker_env")
    if isinstance(docker, dict) and docker:
        yield from _docker_problems(doc, label, directory, docker)
    if "databricks_spark_job" in data:
        message = "Databricks Spark jobs run only on Databricks; mlrun cannot run them"
        yield Problem(
            label, doc.line_of(("databricks_spark_job",)), "databricks_spark_job", message
        )
    entry_points = data.get("entry_points")
    if isinstance(entry_points, dict):
        for name, entry in entry_points.items():
            if isinstance(entry, dict):
                yield from _entry_point_problems(doc, label, ("entry_points", name), entry)


def _docker_problems(
    doc: LocatedDoc, label: str, directory: Path, docker: dict[str, Any]
) -> Iterator[Problem]:
    from mlrun_cli.project.volumes import parse_volume  # docker_env projects only

    if "image" not in docker and "dockerfile" not in docker:
        message = "missing required key 'image' (or 'dockerfile', to build one)"
        yield Problem(label, doc.line_of(("docker_env",)), "docker_env", message)
    volumes = docker.get("volumes")
    for index, volume in enumerate(volumes if isinstance(volumes, list) else []):
        if isinstance(volume, str):
            try:
                parse_volume(volume, directory)
            except ValueError as exc:
                item: tuple[Any, ...] = ("docker_env", "volumes", index)
                yield Problem(label, doc.line_of(item), format_path(item), str(exc))
    dockerfile = docker.get("dockerfile")
    if isinstance(dockerfile, str) and dockerfile and not (directory / dockerfile).is_file():
        where = ("docker_env", "dockerfile")
        yield Problem(
            label, doc.line_of(where), format_path(where), f"no file {dockerfile!r} in the project"
        )


def _entry_point_problems(
    doc: LocatedDoc, label: str, path: tuple[Any, ...], entry: dict[str, Any]
) -> Iterator[Problem]:
    parameters = entry.get("parameters")
    declared = parameters if isinstance(parameters, dict) else {}
    command = entry.get("command")
    if isinstance(command, str):
        where = (*path, "command")
        try:
            names = placeholder_names(command)
        except ValueError as exc:
            yield Problem(label, doc.line_of(where), format_path(where), f"bad template: {exc}")
            names = []
        declared_names = {str(k) for k in declared}
        for name in names:
            if name not in declared_names:
                known = ", ".join(sorted(declared_names)) or "none declared"
                message = f"{{{name}}} names no parameter of this entry point ({known})"
                yield Problem(label, doc.line_of(where), format_path(where), message)
    for name, spec in declared.items():
        where = (*path, "parameters", name)
        problem = key_problem(str(name))
        if problem is not None:
            message = f"not usable as a parameter name: {problem}"
            yield Problem(label, doc.line_of(where), format_path(where), message)
        if isinstance(spec, dict) and spec.get("default") is not None:
            yield from _default_problems(doc, label, where, spec)
        if isinstance(spec, dict) and spec.get("role") == "output" and spec.get("type") != "path":
            where = (*path, "parameters", name, "role")
            message = "only a 'path' parameter can be an output (set type: path)"
            yield Problem(label, doc.line_of(where), format_path(where), message)
    clash = clash_problem(str(name) for name in declared)
    if clash is not None:
        where = (*path, "parameters")
        yield Problem(label, doc.line_of(where), format_path(where), clash)
    for where in _nul_paths(entry, path):
        message = "contains a NUL character, which no command line can carry"
        yield Problem(label, doc.line_of(where), format_path(where), message)


def _nul_paths(value: Any, path: tuple[Any, ...]) -> Iterator[tuple[Any, ...]]:
    """Where a string (or a key) holding NUL sits below `path`."""
    if isinstance(value, str):
        if "\0" in value:
            yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and "\0" in key:
                yield (*path, key)
            yield from _nul_paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _nul_paths(item, (*path, index))


def _declared_envs(data: object) -> list[str]:
    """The environment keys MLflow acts on, in its order of precedence: an empty one (null,
    "", {}) it skips, as if absent."""
    if not isinstance(data, dict):
        return []
    return [key for key in ENV_KEYS if key in data and data[key] not in (None, "", {})]


def _env_warnings(doc: LocatedDoc, label: str) -> Iterator[Problem]:
    """An empty environment key: MLflow accepts it and acts as if it were absent."""
    data = doc.data
    if not isinstance(data, dict):
        return
    declared = _declared_envs(data)
    for key in ENV_KEYS:
        if key in data and key not in declared:
            message = (
                "empty, so ignored as MLflow ignores it (python_env.yaml or conda.yaml beside "
                "MLproject is used, if any); remove it or name a file"
            )
            yield Problem(label, doc.line_of((key,)), key, message)


def _parameter_warnings(doc: LocatedDoc, label: str) -> Iterator[Problem]:
    """What MLflow accepts without a word and mlrun runs the same way, but points out.
    Read defensively: a document with errors is looked at too, and may have any shape."""
    for name, param, spec in _declared_parameters(doc.data):
        path = ("entry_points", name, "parameters", param)
        declared = spec if isinstance(spec, str) else spec.get("type", "string")
        where = path if isinstance(spec, str) else (*path, "type")
        if isinstance(declared, str) and known_type(declared) is None:
            message = _unknown_type_message(declared)
            yield Problem(label, doc.line_of(where), format_path(where), message)
        if isinstance(spec, dict) and isinstance(declared, str):
            yield from _mapping_warnings(doc, label, path, spec)


def _declared_parameters(data: object) -> Iterator[tuple[Any, Any, str | dict[Any, Any]]]:
    """(entry point, parameter, its spec) for every spec that is a type name or a mapping."""
    entry_points = data.get("entry_points") if isinstance(data, dict) else None
    for name, entry in entry_points.items() if isinstance(entry_points, dict) else ():
        parameters = entry.get("parameters") if isinstance(entry, dict) else None
        for param, spec in parameters.items() if isinstance(parameters, dict) else ():
            if isinstance(spec, (str, dict)):
                yield name, param, spec


def _unknown_type_message(declared: str) -> str:
    import difflib  # on a mistake only

    close = difflib.get_close_matches(declared, list(CONVERTERS), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    known = ", ".join(CONVERTERS)
    return (
        f"unknown type {declared!r}, passed as a string as MLflow does ({hint}mlrun checks {known})"
    )


def _mapping_warnings(
    doc: LocatedDoc, label: str, path: tuple[Any, ...], spec: dict[str, Any]
) -> Iterator[Problem]:
    for key in spec:
        if str(key).startswith("type ") and spec[key] is None:
            where = (*path, key)
            message = (
                f"'{key}' lacks the colon after 'type', so MLflow ignores it and the type is "
                f"string; write 'type: {str(key)[5:].strip()}'"
            )
            yield Problem(label, doc.line_of(where), format_path(where), message)
    kind = known_type(spec.get("type", "string"))
    if kind in LENIENT_DEFAULT_TYPES and spec.get("default") is not None:
        default = str(spec["default"])
        try:
            CONVERTERS[kind](default, ConversionContext(Path.cwd()))
        except ValueError as exc:
            where = (*path, "default")
            message = f"not a valid {kind} ({exc}); passed as written, as MLflow does"
            yield Problem(label, doc.line_of(where), format_path(where), message)


def _default_problems(
    doc: LocatedDoc, label: str, path: tuple[Any, ...], spec: dict[str, Any]
) -> Iterator[Problem]:
    kind = known_type(spec.get("type", "string"))
    if kind is None or kind not in PURE_TYPES or kind in LENIENT_DEFAULT_TYPES:
        return
    try:
        CONVERTERS[kind](str(spec["default"]), ConversionContext(Path.cwd()))
    except ValueError as exc:
        where = (*path, "default")
        yield Problem(label, doc.line_of(where), format_path(where), f"not a valid {kind}: {exc}")


def _build(data: dict[str, Any], directory: Path, mlproject: Path) -> Project:
    entry_points = {
        str(name): EntryPoint(
            name=str(name),
            command=entry["command"],
            parameters=tuple(_parameter(str(k), v) for k, v in entry.get("parameters", {}).items()),
        )
        for name, entry in data.get("entry_points", {}).items()
    }
    name = data.get("name")
    return Project(directory, name, mlproject, _env_declared(data, directory), entry_points)


def _parameter(name: str, spec: Any) -> Parameter:
    if isinstance(spec, str):
        return Parameter(name, known_type(spec) or "string", None)
    default = spec.get("default")
    kind = known_type(spec.get("type", "string")) or "string"
    role = spec.get("role", "input")
    return Parameter(name, kind, None if default is None else str(default), role)


def _env_declared(data: dict[str, Any], directory: Path) -> EnvDecl:
    declared = _declared_envs(data)
    if not declared:
        return _env_beside(directory)
    key = declared[0]
    if key == "docker_env":
        docker = data["docker_env"]
        environment = tuple(
            (item, None) if isinstance(item, str) else (str(item[0]), str(item[1]))
            for item in docker.get("environment") or []
        )
        image = DockerEnv(
            docker.get("image"),
            tuple(docker.get("volumes") or []),
            environment,
            docker.get("dockerfile"),
        )
        return EnvDecl("docker_env", docker=image, origin="MLproject docker_env")
    return EnvDecl(key, file=directory / data[key], origin=f"MLproject {key}")


def _env_beside(directory: Path) -> EnvDecl:
    for kind, file_name in (
        ("python_env", DEFAULT_PYTHON_ENV_FILE),
        ("conda_env", DEFAULT_CONDA_FILE),
    ):
        if (directory / file_name).is_file():
            return EnvDecl(kind, file=directory / file_name, origin=f"{file_name} in the project")
    if has_uv_lock(directory):
        return EnvDecl("uv_lock", file=directory / "uv.lock", origin="uv.lock in the project")
    return EnvDecl("none", origin="no environment declared")


def has_uv_lock(directory: Path) -> bool:
    """A uv project: its uv.lock (with the pyproject.toml it locks) decides the env."""
    return (directory / "uv.lock").is_file() and (directory / "pyproject.toml").is_file()


def select_entry_point(project: Project, name: str) -> EntryPoint:
    """The named entry point, or a bare `.py`/`.sh` file of the project run as MLflow would."""
    if name in project.entry_points:
        return project.entry_points[name]
    runner = BARE_RUNNERS.get(Path(name).suffix)
    if runner is not None and _project_file(project.directory, name) is not None:
        return EntryPoint(name=name, command=f"{runner} {shlex.quote(name)}")
    defined = ", ".join(project.entry_points) or "none"
    where = project.mlproject.name if project.mlproject else "the project (no MLproject file)"
    if runner is not None:
        raise EntryPointError(f"entry point '{name}': no such file in {project.directory}")
    raise EntryPointError(
        f"entry point '{name}' is not defined in {where}; defined: {defined} "
        "(or name a .py or .sh file of the project)"
    )


def _project_file(directory: Path, name: str) -> Path | None:
    """The project file `name` names, which must stay inside the project once symlinks are
    followed: `-e ../x.py` or `-e /abs/x.py` would run code the project does not hold."""
    try:
        path = (directory / name).resolve()
        inside = path.is_relative_to(directory.resolve())
        found = path.is_file()
    except (OSError, RuntimeError, ValueError) as exc:
        raise EntryPointError(f"entry point '{name}': cannot be read ({exc})") from None
    if not inside:
        raise EntryPointError(
            f"entry point '{name}' resolves to {path}, outside the project {directory}; "
            "name a .py or .sh file inside the project"
        )
    return path if found else None
