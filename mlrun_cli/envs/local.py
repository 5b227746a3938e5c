"""The current interpreter: nothing is built; `python` is whatever PATH says, as in MLflow."""

from __future__ import annotations

import shutil
from collections.abc import Mapping

from mlrun_cli.envs.base import BuildProgress, EnvPlan, PreparedEnv
from mlrun_cli.errors import LaunchError
from mlrun_cli.execution import run_captured
from mlrun_cli.spec import Project

_VERSION_SNIPPET = "import platform; print(platform.python_version())"


class LocalEnvManager:
    name = "local"

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ

    def plan(self, project: Project) -> EnvPlan:
        return EnvPlan(self.name, "the current interpreter")

    def prepare(self, plan: EnvPlan, progress: BuildProgress, rebuild: bool) -> PreparedEnv:
        path = self.environ.get("PATH")
        python = shutil.which("python", path=path) or shutil.which("python3", path=path)
        return PreparedEnv(self.name, python, _version_of(python, self.environ))


def _version_of(python: str | None, env: Mapping[str, str]) -> str | None:
    if python is None:
        return None
    try:
        outcome = run_captured((python, "-c", _VERSION_SNIPPET), env=env, timeout=30)
    except LaunchError:
        return None
    return outcome.stdout.strip() or None if outcome.returncode == 0 else None
