"""Environment managers: one registry, one module each.

The default follows what the project declares (DESIGN.md precedence): python_env -> uv (or
virtualenv when uv is missing), conda_env -> conda (or a pip translation built with uv when no
conda engine exists), nothing -> the current interpreter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from mlrun_cli.envs.base import BuildProgress, EnvManager, EnvPlan, PreparedEnv, SilentProgress
from mlrun_cli.envs.cache import EnvCache
from mlrun_cli.envs.conda import CondaEnvManager, conda_engine_available
from mlrun_cli.envs.local import LocalEnvManager
from mlrun_cli.envs.uv import UvEnvManager, uv_executable
from mlrun_cli.envs.virtualenv import VirtualenvEnvManager
from mlrun_cli.errors import EnvUnavailableError
from mlrun_cli.spec import Project

__all__ = [
    "KNOWN_MANAGERS",
    "BuildProgress",
    "EnvManager",
    "EnvPlan",
    "PreparedEnv",
    "SilentProgress",
    "default_manager",
    "select_manager",
]

Factory = Callable[[EnvCache, Mapping[str, str], Path, bool], EnvManager]

MANAGERS: dict[str, Factory] = {
    "local": lambda cache, environ, base, strict: LocalEnvManager(environ),
    "uv": lambda cache, environ, base, strict: UvEnvManager(cache, environ, base),
    "virtualenv": lambda cache, environ, base, strict: VirtualenvEnvManager(cache, environ, base),
    "conda": lambda cache, environ, base, strict: CondaEnvManager(cache, environ, base, strict),
}
# Names the CLI accepts; those not in MANAGERS are refused with a clear message.
KNOWN_MANAGERS = ("local", "uv", "virtualenv", "conda", "docker")


def default_manager(project: Project, environ: Mapping[str, str]) -> str:
    kind = project.env.kind
    if kind == "docker_env":
        raise EnvUnavailableError(
            "this project declares a docker_env, which this mlrun cannot run yet; "
            "pass --no-env to run it with the current interpreter"
        )
    python_default = "uv" if uv_executable() else "virtualenv"
    if kind == "conda_env":
        return "conda" if conda_engine_available(environ) else python_default
    if kind in ("python_env", "uv_lock"):
        return python_default
    return "local"


def select_manager(
    project: Project, requested: str | None, environ: Mapping[str, str], display_base: Path
) -> EnvManager:
    """The manager for this run, chosen before the run exists so a refusal leaves no trace."""
    strict = requested is not None
    name = requested or default_manager(project, environ)
    factory = MANAGERS.get(name)
    if factory is None:
        raise EnvUnavailableError(
            f"--env-manager {name} is not available in this mlrun yet; "
            "pass --no-env (or --env-manager local) to use the current interpreter"
        )
    return factory(EnvCache.from_environment(environ), environ, display_base, strict)
