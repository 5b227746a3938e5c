"""virtualenv builds: the `virtualenv` package creates the env, the env's own pip installs."""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from mlrun_cli.core.processes import run_captured, run_logged
from mlrun_cli.envs.venv import VenvManager, VenvPlan, check_step, write_requirements
from mlrun_cli.errors import EnvUnavailableError
from mlrun_cli.project.spec import Project

# Bumped whenever mlrun changes how it builds, so older cached envs are not reused.
RECIPE = "1"


class VirtualenvEnvManager(VenvManager):
    name = "virtualenv"

    def version(self) -> str:
        try:
            return f"{metadata.version('virtualenv')} recipe {RECIPE}"
        except metadata.PackageNotFoundError:
            raise EnvUnavailableError(
                "--env-manager virtualenv: the virtualenv package is not installed; "
                "pip install virtualenv"
            ) from None

    def plan(self, project: Project) -> VenvPlan:
        if project.env.kind == "uv_lock":
            raise EnvUnavailableError(
                "this project is defined by its uv.lock, which only uv can install: "
                "use --env-manager uv"
            )
        return super().plan(project)

    def build(self, plan: VenvPlan, prefix: Path, log_path: Path) -> dict[str, Any]:
        env = {k: v for k, v in self.environ.items() if k != "VIRTUAL_ENV"}
        env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        create = (
            sys.executable,
            "-m",
            "virtualenv",
            "--python",
            str(plan.interpreter.path),
            str(prefix),
        )
        check_step(run_logged(create, log_path, env), "virtualenv", log_path)
        pip = (str(prefix / "bin" / "python"), "-m", "pip")
        if plan.spec.build_dependencies:
            argv = (*pip, "install", *plan.spec.build_dependencies)
            check_step(run_logged(argv, log_path, env), "installing build_dependencies", log_path)
        requirements = write_requirements(plan.spec, plan.project_dir, prefix.parent)
        if requirements is not None:
            argv = (*pip, "install", "-r", str(requirements))
            check_step(run_logged(argv, log_path, env), "installing dependencies", log_path)
        freeze = run_captured((*pip, "freeze", "--all"), env=env)
        check_step(freeze.returncode, "pip freeze", log_path)
        (prefix.parent / "requirements.lock.txt").write_text(freeze.stdout, encoding="utf-8")
        return {"engine": "virtualenv"}
