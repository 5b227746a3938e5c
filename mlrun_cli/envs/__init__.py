"""Environment managers: one registry, one module each, imported only when chosen.

The default follows what the project declares: docker_env -> docker, python_env -> uv (or
virtualenv when uv is missing), conda_env -> conda (or a pip translation built with uv when no
conda engine exists), nothing -> the current interpreter. Importing this package is cheap (the
CLI reads `MANAGERS` for its choices at start-up).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from importlib import import_module
from typing import TYPE_CHECKING

from mlrun_cli.envs.base import (
    BuildProgress,
    EnvContext,
    EnvManager,
    EnvPlan,
    PreparedEnv,
    SilentProgress,
)
from mlrun_cli.errors import EnvUnavailableError

if TYPE_CHECKING:
    from mlrun_cli.project.spec import Project

__all__ = [
    "BuildProgress",
    "EnvContext",
    "EnvManager",
    "EnvPlan",
    "PreparedEnv",
    "SilentProgress",
    "default_manager",
    "select_manager",
]

# name -> (module, class); a class takes (cache, context).
MANAGERS: dict[str, tuple[str, str]] = {
    "local": ("mlrun_cli.envs.local", "LocalEnvManager"),
    "uv": ("mlrun_cli.envs.uv", "UvEnvManager"),
    "virtualenv": ("mlrun_cli.envs.virtualenv", "VirtualenvEnvManager"),
    "conda": ("mlrun_cli.envs.conda", "CondaEnvManager"),
    "docker": ("mlrun_cli.envs.docker", "DockerEnvManager"),
}


def default_manager(project: Project, environ: Mapping[str, str]) -> str:
    kind = project.env.kind
    if kind == "docker_env":
        return "docker"
    if kind == "none":
        return "local"
    from mlrun_cli.envs.uv import uv_executable

    python_default = "uv" if uv_executable() else "virtualenv"
    if kind == "conda_env":
        from mlrun_cli.envs.conda import conda_engine_available

        return "conda" if conda_engine_available(environ) else python_default
    return python_default


def select_manager(project: Project, requested: str | None, context: EnvContext) -> EnvManager:
    """The manager for this run, chosen before the run exists so a refusal leaves no trace."""
    context = replace(context, strict=requested is not None)
    name = requested or default_manager(project, context.environ)
    if name not in MANAGERS:
        raise EnvUnavailableError(
            f"--env-manager {name}: not an environment manager of mlrun "
            f"({', '.join(MANAGERS)}); pass --no-env to use the current interpreter"
        )
    module, class_name = MANAGERS[name]
    factory: Callable[..., EnvManager] = getattr(import_module(module), class_name)
    from mlrun_cli.core.caches import env_cache_dir, writable_cache_dir
    from mlrun_cli.envs.cache import EnvCache

    root = env_cache_dir(context.environ)
    if name != "local":  # the current interpreter needs no cache
        root = writable_cache_dir(root, "environment")
    return factory(EnvCache(root), context)
