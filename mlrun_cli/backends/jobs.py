"""Backends that submit a job to a cluster engine instead of running the command here.

A job backend (Slurm, Ray; Kubernetes would be one more) never sees the prepared env: it
submits a job that runs mlrun itself on the node, on a staged snapshot of the project, in
"execute this existing run" mode. What it must answer is small: submit a job, say what the
engine knows of one, cancel one. The run's final status is written by the node-side mlrun; the
engine's word (`JobState`) only matters when the job died before the node could write it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Any, Protocol

from mlrun_cli.backends import BACKENDS, JOB_BACKENDS, backend_names
from mlrun_cli.errors import LaunchError, Problem, SpecError, UsageError
from mlrun_cli.project.located_doc import LocatedDoc
from mlrun_cli.tracking.entities import RunStatus
from mlrun_cli.tracking.tags import BACKEND_TAG


def job_id_tag(backend: str) -> str:
    return f"mlrun.{backend}.job_id"


@dataclass(frozen=True)
class JobSpec:
    """One job: run `argv` in `workdir` with exactly `env`, output into `output_log`."""

    run_id: str
    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str]
    workdir: Path  # the staged project snapshot
    output_log: Path  # what the node-side mlrun itself prints (Slurm; Ray keeps its own)
    # A job array (Slurm): task i runs array[i] instead of argv, at most `throttle` at once.
    array: tuple[tuple[str, ...], ...] = ()
    throttle: int | None = None


@dataclass(frozen=True)
class JobState:
    """What the engine says about a job, in its own words and mapped to a run status."""

    state: str  # the engine's word: PENDING, RUNNING, COMPLETED, CANCELLED, TIMEOUT, ...
    final: bool  # the job is over
    status: RunStatus | None  # the run's status when the node could not write one
    reason: str  # the engine's reason, as a tag of a reconciled run: one line
    exit_code: int | None = None
    log: str = ""  # the engine's log of a job that ended unrecorded (an artifact, not a tag)


class EngineUnreachable(LaunchError):
    """The engine did not answer (its head is gone, the network is down): the job's fate is
    unknown, which is not the same as "the engine no longer knows the job"."""


class JobBackend(Protocol):
    name: str

    def submit(self, spec: JobSpec) -> str:
        """Submit the job and return the engine's job id; raise LaunchError if refused."""
        ...

    def state(self, job_id: str) -> JobState | None:
        """The engine's view of the job, or None when the engine no longer knows it; raise
        EngineUnreachable when the engine cannot be asked."""
        ...

    def cancel(self, job_id: str) -> None:
        """Ask the engine to end the job, pending or running; a job already over is fine."""
        ...

    def run_tags(self) -> dict[str, str]:
        """What `backend_for_run` needs later to find the engine again (Ray's address)."""
        ...


@dataclass(frozen=True)
class BackendConfig:
    """A `--backend-config`, already checked against the backend's schema."""

    backend: str
    values: Mapping[str, Any]

    @property
    def staging_dir(self) -> str | None:
        value = self.values.get("staging_dir")
        return str(value) if value else None

    @property
    def mlrun_command(self) -> str | None:
        value = self.values.get("mlrun_command")
        return str(value) if value else None


def load_backend_config(backend: str, given: str | None, cwd: Path) -> BackendConfig:
    """Read `--backend-config` (a JSON or YAML file, or inline JSON) and check every key at
    once against `schemas/<backend>.schema.json`."""
    from mlrun_cli.project.schema import check_schema

    doc, label = _config_doc(given, cwd)
    problems = check_schema(doc, backend, label)
    if problems:
        raise SpecError(problems)
    return BackendConfig(backend, dict(doc.data))


def _config_doc(given: str | None, cwd: Path) -> tuple[LocatedDoc, str]:
    """The config as a located document. Inline JSON needs no YAML parser (whose import is a
    good part of a detached submission's time); a file may be YAML."""
    if given is None:
        return LocatedDoc({}), "--backend-config"
    stripped = given.strip()
    if stripped.startswith("{"):
        try:
            return LocatedDoc(json.loads(stripped)), "--backend-config"
        except json.JSONDecodeError as exc:
            problem = Problem("--backend-config", None, "", f"invalid JSON: {exc.msg}")
            raise SpecError([problem]) from None
    path = cwd / Path(given).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(
            f"--backend-config {given}: cannot read it ({exc.strerror}); pass a JSON file or "
            'inline JSON such as \'{"partition": "debug"}\''
        ) from None
    from mlrun_cli.project.located_yaml import load_located

    doc = load_located(text, str(path))
    return (doc if doc.data is not None else LocatedDoc({}, doc.lines)), str(path)


@dataclass(frozen=True)
class JobPlan:
    """The engine chosen in plan_run, with its checked config."""

    config: BackendConfig
    backend: JobBackend
    detach: bool = False


def plan_job(
    name: str | None, config_text: str | None, detach: bool, cwd: Path, environ: Mapping[str, str]
) -> JobPlan | None:
    """`--backend` and its config, checked before anything is written; None runs here."""
    if name is None or name in BACKENDS:
        if config_text is not None:
            raise UsageError(
                f"--backend-config is for the job backends ({', '.join(JOB_BACKENDS)})"
            )
        if detach:
            raise UsageError(f"--detach needs a job backend: --backend {' or '.join(JOB_BACKENDS)}")
        return None
    if name not in JOB_BACKENDS:
        known = ", ".join(backend_names())
        raise UsageError(f"--backend {name}: not a backend of this mlrun ({known})")
    config = load_backend_config(name, config_text, cwd)
    # A variable the job cannot get is a usage error now, before the run exists.
    exported_environment([str(item) for item in config.values.get("environment", ())], environ, ())
    return JobPlan(config, select_job_backend(config, environ), detach)


def select_job_backend(config: BackendConfig, environ: Mapping[str, str]) -> JobBackend:
    module, class_name = JOB_BACKENDS[config.backend]
    backend: JobBackend = getattr(import_module(module), class_name)(config.values, environ)
    return backend


def backend_for_run(tags: Mapping[str, str], environ: Mapping[str, str]) -> JobBackend | None:
    """The engine of a submitted run, found from its tags; None for a run that ran here."""
    name = tags.get(BACKEND_TAG)
    if name not in JOB_BACKENDS or job_id_tag(name) not in tags:
        return None
    module, class_name = JOB_BACKENDS[name]
    built: JobBackend = getattr(import_module(module), class_name).from_tags(tags, environ)
    return built


def exported_environment(
    names: list[str], environ: Mapping[str, str], always: tuple[str, ...]
) -> dict[str, str]:
    """The variables a job gets: `always` when set here, and the config's `environment`
    items (NAME copies the submitting shell's value, NAME=value sets one)."""
    exported = {name: environ[name] for name in always if environ.get(name)}
    missing = []
    for item in names:
        name, sep, value = item.partition("=")
        if sep:
            exported[name] = value
        elif name in environ:
            exported[name] = environ[name]
        else:
            missing.append(name)
    if missing:
        raise UsageError(
            f"--backend-config environment: {', '.join(missing)} not set in this shell; "
            "set it or give NAME=value"
        )
    return exported
