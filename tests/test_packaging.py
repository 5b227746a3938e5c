"""The wheel, installed on its own, carries its schemas and its entry points."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import INVALID, REPO


@pytest.mark.slow
def test_an_installed_wheel_finds_its_schema(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    [wheel] = (tmp_path / "dist").glob("mlrun_cli-*.whl")
    assert "mlrun_cli/schemas/mlproject.schema.json" in zipfile.ZipFile(wheel).namelist()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [venv / "bin" / "pip", "install", "-q", str(wheel)], check=True, capture_output=True
    )
    case = tmp_path / "case"
    case.mkdir()
    (case / "MLproject").write_text((INVALID / "unknown_top_level_key" / "MLproject").read_text())
    done = subprocess.run(
        [venv / "bin" / "mlrun", "validate", "case"], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 2
    assert done.stderr.splitlines()[0] == (
        "case/MLproject:2: requirements: unknown key (allowed here: name, python_env, conda_env, "
        "docker_env, entry_points, databricks_spark_job)"
    )
    version = subprocess.run([venv / "bin" / "mlrun", "--version"], capture_output=True, text=True)
    assert version.stdout.startswith("mlrun ")
    imported = subprocess.run(
        [venv / "bin" / "python", "-X", "importtime", venv / "bin" / "mlrun", "--version"],
        capture_output=True,
        text=True,
    )  # the command imports no more than the version needs
    assert imported.stdout.startswith("mlrun ")
    names = {line.split("|")[-1].strip() for line in imported.stderr.splitlines()}
    assert "mlrun_cli.cli" in names
    assert not names & {"re", "typing", "logging", "click"}
