"""A user's Slurm day, through real mlrun processes on a real one-node cluster: submit a job
detached, follow its output with `runs logs -f`, cancel it, and read the record back with
`runs describe` and MLflow's own client; then a job that runs out of time, once attached and
once detached and settled by `runs wait`, recorded the same way."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.backends.jobs_common import time_out_once_started
from tests.conftest import child_env, mlrun_command, run_mlrun, write_files

pytestmark = [pytest.mark.journey, pytest.mark.slow, pytest.mark.slurm]

PROJECT = {
    "MLproject": (
        "name: steps\n"
        "entry_points:\n"
        "  main:\n"
        "    parameters: {seconds: {type: int, default: 300}}\n"
        '    command: "echo start; sleep {seconds}; echo end"\n'
    )
}
CONFIG = json.dumps({"partition": "debug"})
TIMED = json.dumps({"partition": "debug", "time": "1"})


def _mlrun(cwd: Path, conf: str, *args: str, timeout: float = 120) -> str:
    done = run_mlrun(*args, cwd=cwd, timeout=timeout, SLURM_CONF=conf)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout


def _described(cwd: Path, conf: str, run_id: str) -> dict[str, str]:
    """`runs describe` as a user reads it: `key: value` lines, tags indented under `tags:`."""
    text = _mlrun(cwd, conf, "runs", "describe", run_id)
    pairs = (line.strip().partition(": ") for line in text.splitlines() if ": " in line)
    return {key: value for key, _, value in pairs}


def _submit(cwd: Path, conf: str, *extra: str) -> str:
    out = _mlrun(cwd, conf, "run", "steps", "--no-env", "--backend", "slurm", "--detach",
                 "--json", *extra)  # fmt: skip
    run_id: str = json.loads(out)["run"]["run_id"]
    return run_id


def test_submit_follow_cancel_then_describe(tmp_path: Path, slurm_conf: str) -> None:
    write_files(tmp_path / "steps", PROJECT)
    run_id = _submit(tmp_path, slurm_conf, "--backend-config", CONFIG)
    follower = subprocess.Popen(
        mlrun_command("runs", "logs", "-f", run_id), cwd=tmp_path,
        env=child_env(SLURM_CONF=slurm_conf), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert follower.stdout is not None
    assert follower.stdout.readline() == "start\n"  # the step runs, and we see it as it does

    assert _mlrun(tmp_path, slurm_conf, "runs", "cancel", run_id) == f"Run {run_id} KILLED\n"
    rest, errors = follower.communicate(timeout=60)
    assert follower.returncode == 0, errors
    assert rest == ""  # nothing after the interrupted step

    described = _described(tmp_path, slurm_conf, run_id)
    assert described["status"] == "KILLED"
    assert int(described["mlrun.exit_code"]) == 143  # 128 + SIGTERM, Slurm's cancel signal
    # Slurm's word on the job: CANCELLED, or FAILED when the node's mlrun, stopped by the
    # cancel, exited (128+N) before Slurm marked the job.
    assert described["mlrun.engine.state"] in ("CANCELLED", "FAILED")
    assert described["mlrun.engine.reason"]
    waited = run_mlrun("runs", "wait", run_id, cwd=tmp_path, SLURM_CONF=slurm_conf)
    assert (waited.returncode, waited.stdout) == (143, f"{run_id} KILLED (exit code 143)\n")

    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    from mlflow.tracking import MlflowClient

    recorded = MlflowClient(tracking_uri=(tmp_path / "mlruns").as_uri()).get_run(run_id)
    assert recorded.info.status == "KILLED"
    assert recorded.data.tags["mlrun.slurm.job_id"]


def test_a_time_limit_is_recorded_alike_attached_and_detached(
    tmp_path: Path, slurm_conf: str
) -> None:
    """Both jobs run side by side until Slurm ends them by their time limit."""
    write_files(tmp_path / "steps", PROJECT)
    attached = subprocess.Popen(
        mlrun_command("run", "steps", "--no-env", "--backend", "slurm", "--backend-config",
                      TIMED, "--json"),
        cwd=tmp_path, env=child_env(SLURM_CONF=slurm_conf), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    detached_id = _submit(tmp_path, slurm_conf, "--backend-config", TIMED)
    time_out_once_started(tmp_path, slurm_conf, jobs=2)
    waited = run_mlrun("runs", "wait", detached_id, cwd=tmp_path, timeout=240,
                       SLURM_CONF=slurm_conf)  # fmt: skip
    out, errors = attached.communicate(timeout=240)
    attached_id = json.loads(out)["run"]["run_id"]
    assert attached.returncode == waited.returncode == 143, errors
    assert waited.stdout == f"{detached_id} FAILED (exit code 143)\n"
    assert "TIMEOUT (TimeLimit)" in errors  # the attached user is told why

    keys = ("status", "mlrun.exit_code", "mlrun.engine.state", "mlrun.engine.reason")
    records = [
        {key: _described(tmp_path, slurm_conf, run_id).get(key) for key in keys}
        for run_id in (attached_id, detached_id)
    ]
    assert (
        records[0]
        == records[1]
        == {
            "status": "FAILED",
            "mlrun.exit_code": "143",
            "mlrun.engine.state": "TIMEOUT",
            "mlrun.engine.reason": "TIMEOUT (TimeLimit)",
        }
    )
