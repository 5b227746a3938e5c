"""`mlrun validate` from a plain checkout: no install, only the checkout on PYTHONPATH."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def test_validate_runs_from_a_plain_checkout(tmp_path: Path) -> None:
    """A fresh venv with mlrun's dependencies but not mlrun itself (the test process has it
    installed, which would hide a checkout that cannot find its own schemas)."""
    venv = tmp_path / "venv"
    subprocess.run(["uv", "venv", "-q", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    subprocess.run(
        ["uv", "pip", "install", "-q", "--python", python,
         "click", "pyyaml", "jsonschema", "platformdirs"],
        check=True,
    )  # fmt: skip
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    env["MLRUN_CACHE_DIR"] = str(tmp_path / "cache")
    done = subprocess.run(
        [python, "-m", "mlrun_cli", "validate", "example_project"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("example_project/MLproject: valid; entry points: train, infer")
    not_installed = subprocess.run(
        [python, "-c", "import importlib.util as u; print(u.find_spec('mlrun_cli.schemas'))"],
        env={**env, "PYTHONPATH": ""},
        capture_output=True,
        text=True,
    )
    assert not_installed.returncode != 0 or not_installed.stdout.strip() == "None"
