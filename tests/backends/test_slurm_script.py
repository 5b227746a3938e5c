"""The generated sbatch script: mlflow-slurm's keys, and only the variables the run needs."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlrun_cli.backends.jobs import JobSpec, exported_environment
from mlrun_cli.backends.slurm import SlurmBackend
from mlrun_cli.errors import UsageError


def _spec(tmp_path: Path, env: dict[str, str]) -> JobSpec:
    return JobSpec(
        run_id="abc",
        name="mlrun-abc",
        argv=("/venv/bin/python", "-m", "mlrun_cli", "run", ".", "-P", "msg=two words"),
        env=env,
        workdir=tmp_path / "project",
        output_log=tmp_path / "job.out",
    )


def test_script_carries_the_config_and_exports_only_what_the_run_needs(tmp_path: Path) -> None:
    config = {"partition": "gpu", "time": "10", "gpus_per_node": 2, "cpus_per_task": 4,
              "qos": "high", "constraint": "a100", "modules": ["cuda/12"]}  # fmt: skip
    shell = {"PATH": "/usr/bin", "HOME": "/home/u", "SECRET_OF_SHELL": "x", "WANDB_KEY": "k"}
    env = exported_environment(["WANDB_KEY", "SEED=7"], shell, ("MLRUN_CACHE_DIR",))
    script = SlurmBackend(config, shell).script(_spec(tmp_path, env))
    assert script.splitlines() == [
        "#!/bin/bash",
        "#SBATCH --job-name=mlrun-abc",
        "#SBATCH --partition=gpu",
        "#SBATCH --time=10",
        "#SBATCH --gpus-per-node=2",
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --qos=high",
        "#SBATCH --constraint=a100",
        f"#SBATCH --output={tmp_path}/job.out",
        "#SBATCH --export=NIL",
        f"#SBATCH --chdir={tmp_path}/project",
        "module load cuda/12",
        "export HOME=/home/u",
        "export PATH=/usr/bin",
        "export SEED=7",
        "export WANDB_KEY=k",
        "exec /venv/bin/python -m mlrun_cli run . -P 'msg=two words'",
    ]


def test_a_named_variable_missing_from_the_shell_is_an_error() -> None:
    with pytest.raises(UsageError, match="WANDB_KEY not set in this shell"):
        exported_environment(["WANDB_KEY"], {}, ())
