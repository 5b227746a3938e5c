"""`mlrun validate`: the same checks `mlrun run` makes before it creates anything."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mlrun_cli.core.settings import Settings
from mlrun_cli.errors import EnvUnavailableError
from mlrun_cli.project.spec import Project, display_path, load_project, select_entry_point
from mlrun_cli.sources.resolve import resolve_source

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ValidationReport:
    project: Project
    label: str  # the MLproject (or project directory) as the user would type it

    def summary(self) -> str:
        project = self.project
        where = self.label if project.mlproject else f"{self.label} (no MLproject)"
        entry_points = ", ".join(project.entry_points) or "none (bare .py/.sh files only)"
        return f"{where}: valid; entry points: {entry_points}; environment: {project.env.origin}"


def check_env_file(project: Project, display_base: Path, environ: Mapping[str, str]) -> None:
    """The env file is read exactly as `mlrun run` reads it, so both accept the same files;
    a Python version this machine lacks is a warning: the file is fine, the machine is not."""
    env = project.env
    if env.file is None:
        return
    label = display_path(env.file, display_base)
    if env.kind == "python_env":
        from mlrun_cli.envs.interpreters import find_interpreter
        from mlrun_cli.envs.python_env import load_python_env

        spec = load_python_env(env.file, display_base)
        try:
            find_interpreter(spec.python, environ)
        except EnvUnavailableError as exc:
            log.warning(
                "%s: %s; `mlrun run` refuses it unless --no-env runs the current interpreter",
                label,
                exc.message,
            )
    elif env.kind == "conda_env":
        from mlrun_cli.envs.conda_file import load_conda_file

        load_conda_file(env.file, label)


def validate(uri: str, settings: Settings, entry_point: str | None = None) -> ValidationReport:
    """Raises SpecError (every problem at once) or EntryPointError; otherwise reports."""
    source = resolve_source(uri, settings.cwd)
    project = load_project(source.directory, settings.cwd)
    check_env_file(project, settings.cwd, settings.environ)
    if entry_point is not None:
        select_entry_point(project, entry_point)
    shown = project.mlproject or project.directory
    return ValidationReport(project, display_path(shown, settings.cwd))
