"""Shared helpers: make a project from a dict of files, invoke the CLI, run mlrun for real."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlrun_cli.cli import run_cli

# The engines' session fixtures (slurm_conf, ray_address), defined once for every module: a
# module that imports a fixture gets a definition, and so a cluster or head, of its own.
pytest_plugins = ["tests.backends.engines"]

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "example_project"
RUNTIME = REPO / "mlrun_cli" / "runtime"  # mlrun_log's folder
INVALID = REPO / "tests" / "fixtures" / "invalid"  # golden files of broken projects


def write_files(root: Path, files: Mapping[str, str]) -> Path:
    """The one way tests build projects: relative path -> content."""
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return root


@pytest.fixture(autouse=True)
def isolated_caches(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No test reads or fills the user's own cache (validation stamps, envs, clones)."""
    monkeypatch.setenv("MLRUN_CACHE_DIR", str(tmp_path_factory.mktemp("mlrun-cache")))


@pytest.fixture
def make_project(tmp_path: Path):

    def make(files: Mapping[str, str], name: str = "project") -> Path:
        return write_files(tmp_path / name, files)

    return make


@dataclass(frozen=True)
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


def _runner() -> CliRunner:
    """click 8.2 separates stderr by default and dropped `mix_stderr`; 8.1 needs it."""
    try:
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg]
    except TypeError:
        return CliRunner()


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Invoke `mlrun ARGS` in-process from tmp_path, through the real error boundary."""
    monkeypatch.chdir(tmp_path)
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLRUN_ENV_ROOT", str(tmp_path / "envs"))

    def invoke(*args: str) -> CliResult:
        with _runner().isolation() as streams:
            code = run_cli(list(args))
            sys.stdout.flush()
            sys.stderr.flush()
            out, err = streams[0].getvalue(), streams[1].getvalue()
        return CliResult(code, out.decode(), err.decode())

    return invoke


def mlrun_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "mlrun_cli", *args]


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(extra)
    return env


def run_mlrun(
    *args: str, cwd: Path, timeout: float = 120, **env: str
) -> subprocess.CompletedProcess[str]:
    """mlrun as a user runs it: a real process."""
    return subprocess.run(
        mlrun_command(*args),
        cwd=cwd,
        env=child_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
