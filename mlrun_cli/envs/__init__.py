"""Environment managers: one registry, one module each, imported only when chosen.

The default follows what the project declares (DESIGN.md precedence): python_env -> uv (or
virtualenv when uv is missing), conda_env -> conda (or a pip translation built with uv when no
conda engine exists), nothing -> the current interpreter.
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
from mlrun_cli.spec import Project

if TYPE_CHECKING:
    from mlrun_cli.envs.cache import EnvRecord

__all__ = [
    "BuildProgress",
    "EnvContext",
    "EnvManager",
    "EnvPlan",
    "PreparedEnv",
    "SilentProgress",
    "default_manager",
    "prune_envs",
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
            f"--env-manager {name} is not available in this mlrun yet; "
            "pass --no-env (or --env-manager local) to use the current interpreter"
        )
    module, class_name = MANAGERS[name]
    factory: Callable[..., EnvManager] = getattr(import_module(module), class_name)
    from mlrun_cli.envs.cache import EnvCache

    return factory(EnvCache.from_environment(context.environ), context)


def prune_envs(
    environ: Mapping[str, str], older_than_seconds: float | None
) -> tuple[list[EnvRecord], int]:
    """`mlrun envs prune`: cache entries unused for that long, the images built for them, and
    the per-run checkouts of git sources; returns the removed entries and checkout count."""
    from mlrun_cli.envs.cache import EnvCache
    from mlrun_cli.git import GitCache

    removed = EnvCache.from_environment(environ).prune(older_than_seconds)
    for record in removed:
        if record.manager == "docker":
            from mlrun_cli.envs.docker import remove_image

            remove_image(environ, f"mlrun-env:{record.key}")
    checkouts = GitCache.from_environment(environ).prune_checkouts(older_than_seconds)
    return removed, checkouts
