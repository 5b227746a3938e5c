"""The generated sbatch script: mlflow-slurm's keys, and only the variables the run needs."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from mlrun_cli.backends.jobs import JobSpec, exported_environment
from mlrun_cli.backends.slurm import SlurmBackend
from mlrun_cli.errors import UsageError
from tests.backends.engines import SLURM_SCRIPT


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


@pytest.mark.slow
@pytest.mark.slurm
def test_two_clusters_run_side_by_side_each_in_its_own_state_folder() -> None:
    """scripts/slurm.sh takes free ports per state folder: a second cluster on this machine
    (a parallel test session, a developer's own) starts beside the first and runs its jobs."""
    if os.geteuid() != 0:
        pytest.skip("scripts/slurm.sh starts daemons as root")
    states = [Path(tempfile.mkdtemp(prefix="mlrun-slurm-", dir="/tmp")) for _ in range(2)]
    try:
        confs = [_start(state) for state in states]
        ports = [_ports(conf) for conf in confs]
        assert ports[0] != ports[1] and len(set(ports[0] + ports[1])) == 4
        for state, conf in zip(states, confs, strict=True):
            script = state / "hello.sbatch"
            script.write_text(f"#!/bin/bash\n#SBATCH --output={state}/hello.out\necho hello\n")
            env = {**os.environ, "SLURM_CONF": conf}
            subprocess.run(["sbatch", "--wait", str(script)], env=env, check=True, timeout=60,
                           capture_output=True)  # fmt: skip
            assert (state / "hello.out").read_text() == "hello\n"
    finally:
        for state in states:
            env = {**os.environ, "MLRUN_SLURM_STATE": str(state)}
            subprocess.run(["bash", str(SLURM_SCRIPT), "stop"], env=env, capture_output=True)
            shutil.rmtree(state, ignore_errors=True)


def _start(state: Path) -> str:
    env = {**os.environ, "MLRUN_SLURM_STATE": str(state)}
    started = subprocess.run(["bash", str(SLURM_SCRIPT), "start"], env=env, text=True,
                             capture_output=True, timeout=120)  # fmt: skip
    assert started.returncode == 0, started.stderr
    return started.stdout.strip().rpartition("SLURM_CONF=")[2]


def _ports(conf: str) -> tuple[str, str]:
    lines = dict(line.partition("=")[::2] for line in Path(conf).read_text().splitlines())
    return lines.get("SlurmctldPort", "6817"), lines.get("SlurmdPort", "6818")
