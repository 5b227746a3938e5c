"""`mlrun sweep --search --backend ray` against a real Ray head (tests/backends/engines.py):
each trial is one Ray job, -j of them at once, each told to the study as its job ends."""

from __future__ import annotations

import json
import math
import signal
import subprocess
from pathlib import Path

import pytest

from mlrun_cli.tracking.file_store import FileStore
from tests.backends.engines import wait_for
from tests.conftest import REPO, child_env, mlrun_command, run_mlrun, write_files
from tests.sweeps.test_search_process import final_loss

pytestmark = [pytest.mark.ray, pytest.mark.slow]
EXAMPLE = REPO / "examples" / "search"


def test_a_search_on_ray_runs_each_trial_as_a_ray_job(tmp_path: Path, ray_address: str) -> None:
    config = json.dumps({"address": ray_address, "num_cpus": 1})
    done = run_mlrun(
        "sweep", str(EXAMPLE), "--no-env", "--json", "--backend", "ray",
        "--backend-config", config, "-j", "2", "--search", "random", "--seed", "4",
        "--trials", "3", "--objective", "loss", "--minimize",
        "-P", "lr=loguniform(1e-4,1e-1)", "-P", "dropout=uniform(0,0.5)", "-P", "layers=int(1,4)",
        "-P", "optimizer=choice(adam,sgd)",
        cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)["search"]
    trials = result["trials"]
    assert [(t["index"], t["status"], t["state"]) for t in trials] == [
        (i, "FINISHED", "COMPLETE") for i in (1, 2, 3)
    ]
    for trial in trials:  # each told value is what that trial's job logged for its params
        assert math.isclose(trial["value"], final_loss(trial["params"]), rel_tol=1e-9)
    store = FileStore(tmp_path / "mlruns")
    children = [store.get_run(t["run_id"]) for t in trials]
    jobs = {child.tags["mlrun.ray.job_id"] for child in children}
    assert len(jobs) == 3 and all(job.startswith("mlrun-") for job in jobs)
    assert {child.tags["mlrun.ray.address"] for child in children} == {ray_address}
    parent = store.get_run(result["parent_run_id"])
    assert parent.tags["mlflow.project.backend"] == "ray"
    assert parent.tags["mlrun.search.best_run_id"] == result["best"]["run_id"]


SLEEPER = {
    "MLproject": """
name: sleeper
entry_points:
  main:
    parameters:
      x: float
    command: "python trial.py {x}"
""",
    "trial.py": "import time\ntime.sleep(120)\n",
}


def test_ctrl_c_stops_every_running_trials_ray_job(tmp_path: Path, ray_address: str) -> None:
    from ray.job_submission import JobStatus, JobSubmissionClient

    project = write_files(tmp_path / "project", SLEEPER)
    config = json.dumps({"address": ray_address, "num_cpus": 1})
    process = subprocess.Popen(
        mlrun_command("sweep", str(project), "--no-env", "--backend", "ray", "--backend-config",
                      config, "--search", "random", "--trials", "4", "-j", "2", "--objective",
                      "loss", "--minimize", "-P", "x=uniform(0,1)"),
        cwd=tmp_path, env=child_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    store = FileStore(tmp_path / "mlruns")

    def trials_running() -> bool:
        assert process.poll() is None, process.communicate()
        children = [r for r in store.stored_runs(["0"]) if "mlrun.sweep.index" in r.tags]
        return len(children) == 2 and all(r.info.status.name == "RUNNING" for r in children)

    wait_for(trials_running, 120, "two trials running on Ray")
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    runs = store.stored_runs(["0"])
    assert sorted(r.info.status.name for r in runs) == ["KILLED"] * 3  # the parent and 2 trials
    client = JobSubmissionClient(ray_address)
    for run in runs:
        if "mlrun.ray.job_id" in run.tags:
            assert client.get_job_status(run.tags["mlrun.ray.job_id"]) == JobStatus.STOPPED
