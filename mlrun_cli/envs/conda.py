"""conda builds: a conda executable if there is one, else py-rattler (the engine behind pixi).

Engines, in order: MLRUN_CONDA_EXE, micromamba, mamba, conda on PATH; then py-rattler, which
solves and installs conda packages itself. When rattler cannot reach the file's channels (an
offline machine), and the user did not insist on conda, the file is translated into a
python_env and built with uv instead, saying which conda packages were left out.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from mlrun_cli.core.processes import run_captured, run_logged
from mlrun_cli.envs.base import BuildProgress, EnvContext, EnvPlan, PreparedEnv
from mlrun_cli.envs.cache import EnvCache, EnvInputs
from mlrun_cli.envs.conda_file import CondaFile, load_conda_file, translate
from mlrun_cli.envs.interpreters import current_interpreter, find_interpreter
from mlrun_cli.envs.uv import UvEnvManager
from mlrun_cli.envs.venv import VenvPlan, activation, check_step
from mlrun_cli.errors import EnvBuildError, EnvUnavailableError
from mlrun_cli.project.spec import Project, display_path

log = logging.getLogger(__name__)
EXECUTABLES = ("micromamba", "mamba", "conda")
TRANSLATED = "pip-translation"


@dataclass(frozen=True)
class CondaPlan(EnvPlan):
    conda: CondaFile
    inputs: EnvInputs
    engine: str  # an executable's path, or "rattler"
    project: Project


def conda_executable(environ: Mapping[str, str]) -> str | None:
    named = environ.get("MLRUN_CONDA_EXE")
    if named:
        return shutil.which(named, path=environ.get("PATH")) or named
    for name in EXECUTABLES:
        found = shutil.which(name, path=environ.get("PATH"))
        if found:
            return found
    return None


def rattler_available() -> bool:
    try:
        import rattler  # noqa: F401
    except ImportError:
        return False
    return True


def conda_engine_available(environ: Mapping[str, str]) -> bool:
    return conda_executable(environ) is not None or rattler_available()


class CondaEnvManager:
    name = "conda"

    def __init__(self, cache: EnvCache, context: EnvContext) -> None:
        self.cache = cache
        self.context = context
        self.environ = context.environ
        self.display_base = context.display_base
        self.strict = context.strict  # asked for by --env-manager conda: no pip translation

    def plan(self, project: Project) -> CondaPlan:
        if project.env.kind != "conda_env" or project.env.file is None:
            raise EnvUnavailableError(
                "--env-manager conda needs a conda environment file (conda.yaml or conda_env)"
            )
        conda = load_conda_file(project.env.file, display_path(project.env.file, self.display_base))
        executable = conda_executable(self.environ)
        if executable is not None:
            engine, version = (
                executable,
                _first_line(run_captured((executable, "--version")).stdout),
            )
        elif rattler_available():
            engine, version = "rattler", metadata.version("py-rattler")
        else:
            raise EnvUnavailableError(
                "--env-manager conda: no conda, mamba or micromamba found (set MLRUN_CONDA_EXE), "
                "and py-rattler is not installed (pip install 'mlrun-cli[conda]')"
            )
        inputs = EnvInputs(
            manager=self.name,
            # Asking for conda explicitly never accepts the offline pip translation.
            manager_version=f"{Path(engine).name} {version}" + (" strict" if self.strict else ""),
            python="",
            env_fingerprint=hashlib.sha256(conda.path.read_bytes()).hexdigest(),
            project=str(project.directory),
            env_file=str(conda.path),
        )
        return CondaPlan(
            self.name, f"conda env via {Path(engine).name}", conda, inputs, engine, project
        )

    def prepare(self, plan: EnvPlan, progress: BuildProgress, rebuild: bool) -> PreparedEnv:
        assert isinstance(plan, CondaPlan)  # a manager only receives its own plans
        cached = self.cache.get_or_build(
            plan.inputs,
            lambda prefix, log_path: self._build(plan, prefix, log_path),
            rebuild,
            lambda reason: progress.building(f"building {plan.description}: {reason}"),
        )
        engine = str(cached.info.get("engine"))
        if cached.built_now:
            progress.built(f"built conda env {cached.key} with {engine}")
        fields = activation(cached.prefix)
        if engine != TRANSLATED:
            fields["env_vars"] = {"CONDA_PREFIX": str(cached.prefix)}
        python = Path(fields["python"])
        return PreparedEnv(
            manager=self.name,
            python_version=cached.info.get("env_python") or None,
            key=cached.key,
            engine=engine,
            lock_file=cached.lock_file,
            build_log=cached.build_log if cached.built_now else None,
            reason=cached.reason or None,
            **{**fields, "python": str(python) if python.exists() else None},
        )

    def _build(self, plan: CondaPlan, prefix: Path, log_path: Path) -> dict[str, Any]:
        if plan.engine == "rattler":
            try:
                records = _rattler_install(plan.conda, prefix, log_path)
            except _ChannelsUnreachable as exc:
                if self.strict:
                    raise EnvBuildError(f"conda channels unreachable: {exc}") from None
                return self._translate(plan, prefix, log_path, str(exc))
            lock_lines = records
        else:
            _executable_create(plan.engine, plan.conda.path, prefix, log_path)
            listing = run_captured((plan.engine, "list", "-p", str(prefix), "--export"))
            lock_lines = listing.stdout.splitlines()
        lock_lines += _pip_section(plan.conda, prefix, log_path, self.environ)
        (prefix.parent / "requirements.lock.txt").write_text("\n".join(lock_lines) + "\n")
        return {"engine": Path(plan.engine).name, "env_python": _python_version(prefix)}

    def _translate(self, plan: CondaPlan, prefix: Path, log_path: Path, why: str) -> dict[str, Any]:
        """Offline fallback: the pip-installable part of the file, built with uv."""
        spec = translate(plan.conda, current_interpreter().version.rsplit(".", 1)[0])
        log.warning(
            "conda channels unreachable (%s); building a pip translation of %s with uv%s",
            why,
            plan.conda.path.name,
            f", leaving out: {', '.join(spec.dropped)}" if spec.dropped else "",
        )
        try:
            interpreter = find_interpreter(spec.python, self.environ)
        except EnvUnavailableError as exc:
            raise EnvBuildError(exc.message) from None
        uv = UvEnvManager(self.cache, self.context)
        venv_plan = VenvPlan("uv", "uv env", spec, interpreter, plan.inputs, plan.project.directory)
        uv.build(venv_plan, prefix, log_path)
        return {
            "engine": TRANSLATED,
            "dropped": list(spec.dropped),
            "env_python": interpreter.version,
        }


class _ChannelsUnreachable(Exception):
    pass


def _rattler_install(conda: CondaFile, prefix: Path, log_path: Path) -> list[str]:
    """Solve and install with py-rattler; the records become the lock lines."""
    from rattler import Subdir, install, solve
    from rattler.exceptions import GatewayError

    async def solve_and_install() -> list[Any]:
        records = await solve(
            list(conda.channels),
            list(conda.conda_specs),
            platforms=[Subdir.current(), Subdir("noarch")],
        )
        await install(records, prefix, show_progress=False)
        return list(records)

    with open(log_path, "a", encoding="utf-8") as log_file:
        log_file.write(
            f"rattler: solving {', '.join(conda.conda_specs)} from {', '.join(conda.channels)}\n"
        )
        try:
            records = asyncio.run(solve_and_install())
        except GatewayError as exc:
            log_file.write(f"{exc}\n")
            raise _ChannelsUnreachable(str(exc).splitlines()[0]) from None
        except Exception as exc:  # rattler raises its own exception types for solve failures
            log_file.write(f"{type(exc).__name__}: {exc}\n")
            raise EnvBuildError(f"conda solve/install failed: {str(exc).splitlines()[0]}") from None
        lines = [f"{r.name.normalized}={r.version}={r.build}" for r in records]
        log_file.write("installed:\n" + "\n".join(lines) + "\n")
    return lines


def _executable_create(executable: str, file: Path, prefix: Path, log_path: Path) -> None:
    if Path(executable).name.startswith("micromamba"):
        argv = (executable, "create", "--yes", "-p", str(prefix), "-f", str(file))
    else:
        argv = (executable, "env", "create", "-p", str(prefix), "-f", str(file))
    check_step(run_logged(argv, log_path), f"{Path(executable).name} env create", log_path)


def _pip_section(
    conda: CondaFile, prefix: Path, log_path: Path, environ: Mapping[str, str]
) -> list[str]:
    """rattler does not run the `pip:` section itself; the env's own pip does."""
    if not conda.pip_specs:
        return []
    python = prefix / "bin" / "python"
    if not python.exists():
        raise EnvBuildError("conda file has a pip: section but no python in its dependencies")
    requirements = prefix.parent / "requirements.in"
    requirements.write_text("\n".join(conda.pip_specs) + "\n")
    env = {**environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    argv = (str(python), "-m", "pip", "install", "-r", str(requirements))
    check_step(run_logged(argv, log_path, env, cwd=conda.path.parent), "pip install", log_path)
    return run_captured((str(python), "-m", "pip", "freeze"), env=env).stdout.splitlines()


def _python_version(prefix: Path) -> str:
    python = prefix / "bin" / "python"
    if not os.access(python, os.X_OK):
        return ""
    return run_captured(
        (str(python), "-c", "import platform; print(platform.python_version())")
    ).stdout.strip()


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "unknown"
