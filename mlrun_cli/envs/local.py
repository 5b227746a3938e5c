"""The current interpreter: nothing is built; `python` is whatever PATH says, as in MLflow."""

from __future__ import annotations

import os
import platform
import shutil
import sys
from typing import Any

from mlrun_cli.envs.base import BuildProgress, EnvContext, EnvPlan, PreparedEnv
from mlrun_cli.project.spec import Project


class LocalEnvManager:
    name = "local"

    def __init__(self, cache: Any, context: EnvContext) -> None:
        self.environ = context.environ

    def plan(self, project: Project) -> EnvPlan:
        return EnvPlan(self.name, "the current interpreter")

    def prepare(self, plan: EnvPlan, progress: BuildProgress, rebuild: bool) -> PreparedEnv:
        path = self.environ.get("PATH")
        python = shutil.which("python", path=path) or shutil.which("python3", path=path)
        return PreparedEnv(self.name, python, _known_version(python))


def _known_version(python: str | None) -> str | None:
    """The version when it is known without starting a process (which costs a pyenv shim
    about 80 ms): `python` is the interpreter running mlrun. Otherwise only the path is kept."""
    if python is None:
        return None
    if os.path.realpath(python) == os.path.realpath(sys.executable):
        return platform.python_version()
    return None
