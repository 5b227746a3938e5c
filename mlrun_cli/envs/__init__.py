"""Environment managers: one registry, one module each."""

from __future__ import annotations

from mlrun_cli.envs.base import EnvManager, PreparedEnv
from mlrun_cli.envs.local import LocalEnvManager
from mlrun_cli.errors import EnvUnavailableError
from mlrun_cli.spec import Project

MANAGERS: dict[str, type[EnvManager]] = {"local": LocalEnvManager}
# Names the CLI accepts; those not in MANAGERS are refused with a clear message.
KNOWN_MANAGERS = ("local", "uv", "virtualenv", "conda", "docker")

__all__ = ["KNOWN_MANAGERS", "MANAGERS", "EnvManager", "PreparedEnv", "select_manager"]


def select_manager(project: Project, requested: str | None) -> EnvManager:
    """The manager for this run, chosen before the run exists so a refusal leaves no trace."""
    if requested is None:
        if project.env.kind != "none":
            raise EnvUnavailableError(
                f"the project declares a {project.env.kind} ({project.env.origin}), and this "
                "mlrun cannot build environments yet: pass --no-env (or --env-manager local) "
                "to run it with the current interpreter"
            )
        requested = "local"
    manager_class = MANAGERS.get(requested)
    if manager_class is None:
        raise EnvUnavailableError(
            f"--env-manager {requested} is not available in this mlrun yet; "
            "pass --no-env (or --env-manager local) to use the current interpreter"
        )
    manager = manager_class()
    manager.check(project)
    return manager
