"""The current interpreter: nothing is built; `python` is whatever PATH says, as in MLflow.

The run still records what that interpreter has installed (`requirements.lock.txt`), kept in
the env cache beside the built envs, one file per interpreter, replaced at every run.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import shutil
import sys
from pathlib import Path
from typing import Any

from mlrun_cli.core.atomic import write_atomic
from mlrun_cli.envs.base import BuildProgress, EnvContext, EnvPlan, PreparedEnv
from mlrun_cli.envs.installed import interpreter_paths, requirement_lines
from mlrun_cli.project.spec import Project

log = logging.getLogger(__name__)


class LocalEnvManager:
    name = "local"

    def __init__(self, cache: Any, context: EnvContext) -> None:
        self.environ = context.environ
        self.root: Path = cache.root

    def plan(self, project: Project) -> EnvPlan:
        return EnvPlan(self.name, "the current interpreter")

    def prepare(self, plan: EnvPlan, progress: BuildProgress, rebuild: bool) -> PreparedEnv:
        path = self.environ.get("PATH")
        python = shutil.which("python", path=path) or shutil.which("python3", path=path)
        lock = self._lock_file(python) if python else None
        return PreparedEnv(self.name, python, _known_version(python), lock_file=lock)

    def _lock_file(self, python: str) -> Path | None:
        paths = interpreter_paths(python)
        if paths is None:
            return None
        name = hashlib.sha256(os.path.realpath(python).encode()).hexdigest()[:16]
        target = self.root / "local" / f"{name}.requirements.lock.txt"
        try:
            write_atomic(target, "".join(f"{line}\n" for line in requirement_lines(paths)))
        except OSError as exc:  # a cache that cannot be written costs the lock file, not the run
            log.warning("not recording installed packages: %s", exc)
            return None
        return target


def _known_version(python: str | None) -> str | None:
    """The version when it is known without starting a process (which costs a pyenv shim
    about 80 ms): `python` is the interpreter running mlrun. Otherwise only the path is kept."""
    if python is None:
        return None
    if os.path.realpath(python) == os.path.realpath(sys.executable):
        return platform.python_version()
    return None
