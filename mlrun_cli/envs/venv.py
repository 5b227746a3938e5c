"""What uv and virtualenv builds share: the env spec, the interpreter, the cache, activation.

A venv-style manager turns the project's declaration into a PythonEnvSpec (python_env.yaml as
is, conda.yaml translated, nothing declared: a bare env of the current Python), finds the
interpreter, and leaves only the actual build commands to its subclass.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlrun_cli.envs.base import BuildProgress, EnvContext, EnvPlan, PreparedEnv
from mlrun_cli.envs.cache import EnvCache, EnvInputs
from mlrun_cli.envs.conda_file import load_conda_file, translate
from mlrun_cli.envs.interpreters import Interpreter, current_interpreter, find_interpreter
from mlrun_cli.envs.python_env import PythonEnvSpec, load_python_env
from mlrun_cli.errors import EnvBuildError, EnvUnavailableError
from mlrun_cli.project.spec import Project, display_path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VenvPlan(EnvPlan):
    spec: PythonEnvSpec
    interpreter: Interpreter
    inputs: EnvInputs
    project_dir: Path


def spec_for(project: Project, display_base: Path) -> PythonEnvSpec:
    """The Python env a project asks for, whatever file it declares it in."""
    env = project.env
    current = current_interpreter().version.rsplit(".", 1)[0]
    if env.kind == "python_env" and env.file is not None:
        return load_python_env(env.file, display_base)
    if env.kind == "conda_env" and env.file is not None:
        spec = translate(load_conda_file(env.file, display_path(env.file, display_base)), current)
        if spec.dropped:
            log.warning(
                "%s: conda packages pip cannot install were left out: %s",
                env.file.name,
                ", ".join(spec.dropped),
            )
        return spec
    if env.kind == "docker_env":
        raise EnvUnavailableError(
            "this project declares a docker_env, which a Python venv cannot provide; "
            "drop --env-manager to run it in its container, or pass --no-env to use the "
            "current interpreter"
        )
    return PythonEnvSpec(python=current)


def activation(prefix: Path) -> dict[str, Any]:
    """PreparedEnv fields for a venv: its bin first on PATH, VIRTUAL_ENV set."""
    return {
        "env_vars": {"VIRTUAL_ENV": str(prefix)},
        "path_prepend": (str(prefix / "bin"),),
        "python": str(prefix / "bin" / "python"),
    }


class VenvManager(ABC):
    """Base of the managers that build a virtual environment from a PythonEnvSpec."""

    name: str

    def __init__(self, cache: EnvCache, context: EnvContext) -> None:
        self.cache = cache
        self.context = context
        self.environ = context.environ
        self.display_base = context.display_base

    @abstractmethod
    def version(self) -> str:
        """The builder's own version, part of the cache key."""

    @abstractmethod
    def build(self, plan: VenvPlan, prefix: Path, log_path: Path) -> dict[str, Any]:
        """Create the env at `prefix`, install, and write the lock file beside it."""

    def fingerprint(self, plan_spec: PythonEnvSpec, project: Project) -> str:
        return plan_spec.fingerprint(project.directory)

    def plan(self, project: Project) -> VenvPlan:
        spec = spec_for(project, self.display_base)
        try:
            interpreter = find_interpreter(spec.python, self.environ)
        except EnvUnavailableError as exc:
            if spec.source is None:
                raise
            label = display_path(spec.source, self.display_base)
            raise EnvUnavailableError(f"{exc.message} (asked for by {label})") from None
        inputs = EnvInputs(
            manager=self.name,
            manager_version=self.version(),
            python=interpreter.version,
            env_fingerprint=self.fingerprint(spec, project),
            project=str(project.directory),
            env_file=str(spec.source or ""),
        )
        description = f"{self.name} env, Python {interpreter.version}"
        return VenvPlan(self.name, description, spec, interpreter, inputs, project.directory)

    def prepare(self, plan: EnvPlan, progress: BuildProgress, rebuild: bool) -> PreparedEnv:
        assert isinstance(plan, VenvPlan)  # a manager only receives its own plans
        started = time.monotonic()

        def on_build(reason: str) -> None:
            progress.building(f"building {plan.description}: {reason}")

        cached = self.cache.get_or_build(
            plan.inputs,
            lambda prefix, log_path: self.build(plan, prefix, log_path),
            rebuild,
            on_build,
        )
        if cached.built_now:
            progress.built(
                f"built {self.name} env {cached.key} in {time.monotonic() - started:.1f}s"
            )
        return PreparedEnv(
            manager=self.name,
            python_version=plan.interpreter.version,
            key=cached.key,
            engine=str(cached.info.get("engine", self.name)),
            lock_file=cached.lock_file,
            build_log=cached.build_log if cached.built_now else None,
            reason=cached.reason or None,
            **activation(cached.prefix),
        )


def check_step(returncode: int, what: str, log_path: Path) -> None:
    """A failed build step: the error carries the end of the log, where pip/uv say why."""
    if returncode == 0:
        return
    tail = log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-12:]
    raise EnvBuildError(f"{what} failed (exit code {returncode}); end of the build log:", tail)


def write_requirements(spec: PythonEnvSpec, project_dir: Path, directory: Path) -> Path | None:
    lines = spec.requirement_lines(project_dir)
    if not lines:
        return None
    path = directory / "requirements.in"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
