"""uv builds: `uv venv` + `uv pip install`, or `uv sync` from a project's uv.lock."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from mlrun_cli.core.processes import run_captured, run_logged
from mlrun_cli.envs.python_env import PythonEnvSpec
from mlrun_cli.envs.venv import VenvManager, VenvPlan, check_step, write_requirements
from mlrun_cli.errors import EnvUnavailableError
from mlrun_cli.project.spec import Project, has_uv_lock


@cache
def uv_executable() -> str | None:
    """The uv that ships with mlrun (the `uv` wheel), else one on PATH."""
    try:
        from uv import find_uv_bin

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        return shutil.which("uv")


def _wheel_version() -> str | None:
    """The uv wheel's version, read from its dist-info folder's name beside the package:
    importlib.metadata would cost a warm run more than everything else mlrun does."""
    try:
        import uv
    except ImportError:
        return None
    found = list(Path(uv.__file__).resolve().parent.parent.glob("uv-*.dist-info"))
    if len(found) == 1:
        return found[0].name.removeprefix("uv-").removesuffix(".dist-info")
    from importlib import metadata

    try:
        return metadata.version("uv")
    except metadata.PackageNotFoundError:
        return None


# Bumped whenever mlrun changes how it builds, so older cached envs are not reused.
RECIPE = "1"


class UvEnvManager(VenvManager):
    name = "uv"

    def version(self) -> str:
        executable = uv_executable()
        if executable is None:
            raise EnvUnavailableError("--env-manager uv: no uv executable found; pip install uv")
        version = _wheel_version() or run_captured((executable, "--version")).stdout.strip()
        return f"{version} recipe {RECIPE}"

    def fingerprint(self, plan_spec: PythonEnvSpec, project: Project) -> str:
        """With a uv.lock, the lock and its pyproject decide the env (as in MLflow 3.18)."""
        if not has_uv_lock(project.directory):
            return plan_spec.fingerprint(project.directory)
        digest = hashlib.sha256(b"uv.lock\n")
        for name in ("uv.lock", "pyproject.toml"):
            digest.update((project.directory / name).read_bytes())
        return digest.hexdigest()

    def _env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in self.environ.items()
            if k not in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT")
        }
        env["UV_PYTHON_DOWNLOADS"] = "never"
        return env

    def build(self, plan: VenvPlan, prefix: Path, log_path: Path) -> dict[str, Any]:
        uv = uv_executable()
        assert uv is not None  # checked by version() when planning
        env = self._env()
        python = str(prefix / "bin" / "python")
        step = run_logged(
            (uv, "venv", "--python", str(plan.interpreter.path), str(prefix)), log_path, env
        )
        check_step(step, "uv venv", log_path)
        if has_uv_lock(plan.project_dir):
            sync_env = {**env, "UV_PROJECT_ENVIRONMENT": str(prefix)}
            argv = (
                uv,
                "sync",
                "--frozen",
                "--no-install-project",
                "--no-dev",
                "--compile-bytecode",
                "--python",
                python,
            )
            check_step(
                run_logged(argv, log_path, sync_env, cwd=plan.project_dir), "uv sync", log_path
            )
        else:
            self._install(uv, plan, python, prefix, log_path, env)
        freeze = run_captured((uv, "pip", "freeze", "--python", python), env=env)
        check_step(freeze.returncode, "uv pip freeze", log_path)
        (prefix.parent / "requirements.lock.txt").write_text(freeze.stdout, encoding="utf-8")
        return {"engine": "uv.lock" if has_uv_lock(plan.project_dir) else "uv"}

    def _install(
        self,
        uv: str,
        plan: VenvPlan,
        python: str,
        prefix: Path,
        log_path: Path,
        env: Mapping[str, str],
    ) -> None:
        if plan.spec.build_dependencies:
            argv = (uv, "pip", "install", "--python", python, *plan.spec.build_dependencies)
            check_step(run_logged(argv, log_path, env), "installing build_dependencies", log_path)
        requirements = write_requirements(plan.spec, plan.project_dir, prefix.parent)
        if requirements is not None:
            argv = (
                uv,
                "pip",
                "install",
                "--compile-bytecode",
                "--python",
                python,
                "-r",
                str(requirements),
            )
            check_step(run_logged(argv, log_path, env), "installing dependencies", log_path)
