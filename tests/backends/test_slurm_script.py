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
from tests.backends.engines import SLURM_SCRIPT, slurm_job_state, wait_for


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
        jobs = [_submit_hello(state, conf) for state, conf in zip(states, confs, strict=True)]
        for state, conf, job_id in zip(states, confs, jobs, strict=True):
            wait_for(lambda j=job_id, c=conf: slurm_job_state(j, c) == "COMPLETED", 60,
                     "the hello job")  # fmt: skip
            assert (state / "hello.out").read_text() == "hello\n"
    finally:
        stops = [
            subprocess.Popen(["bash", str(SLURM_SCRIPT), "stop"],
                             env={**os.environ, "MLRUN_SLURM_STATE": str(state)},
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for state in states
        ]  # fmt: skip
        for stop, state in zip(stops, states, strict=True):
            stop.wait(timeout=60)
            shutil.rmtree(state, ignore_errors=True)


def _submit_hello(state: Path, conf: str) -> str:
    """The id of a job that writes `hello` into the state folder (without `sbatch --wait`,
    which polls at 2 s and then 8 s more)."""
    script = state / "hello.sbatch"
    script.write_text(f"#!/bin/bash\n#SBATCH --output={state}/hello.out\necho hello\n")
    submitted = subprocess.run(["sbatch", "--parsable", str(script)], check=True, timeout=60,
                               env={**os.environ, "SLURM_CONF": conf}, capture_output=True,
                               text=True)  # fmt: skip
    return submitted.stdout.strip().partition(";")[0]


def _start(state: Path) -> str:
    env = {**os.environ, "MLRUN_SLURM_STATE": str(state)}
    started = subprocess.run(["bash", str(SLURM_SCRIPT), "start"], env=env, text=True,
                             capture_output=True, timeout=120)  # fmt: skip
    assert started.returncode == 0, started.stderr
    return started.stdout.strip().rpartition("SLURM_CONF=")[2]


def _ports(conf: str) -> tuple[str, str]:
    lines = dict(line.partition("=")[::2] for line in Path(conf).read_text().splitlines())
    return lines.get("SlurmctldPort", "6817"), lines.get("SlurmdPort", "6818")
