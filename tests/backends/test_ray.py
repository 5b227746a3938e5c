"""`--backend ray` against a real Ray head started for the session (tests/backends/engines.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.backends.engines import ray_address, wait_for
from tests.backends.jobs_common import (
    assert_finished_train,
    example_copy,
    run_json,
    sleeper,
    stored_run,
)
from tests.conftest import run_mlrun

pytestmark = [pytest.mark.slow, pytest.mark.ray]
__all__ = ["ray_address"]


def _config(address: str) -> str:
    return json.dumps({"address": address, "num_cpus": 1})


def test_train_runs_on_ray_and_finishes_with_its_records(tmp_path: Path, ray_address: str) -> None:
    project = example_copy(tmp_path)
    done = run_mlrun(
        "run", "example_project", "-e", "train", "--env-manager", "local", "-P", "alpha=0.01",
        "--backend", "ray", "--backend-config", _config(ray_address), "--json",
        cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    document = run_json(done.stdout)
    assert document["status"] == "FINISHED"
    assert str(document["job_id"]).startswith("mlrun-")
    assert "best cv score" in done.stderr
    assert_finished_train(tmp_path, str(document["run_id"]), "ray", project)


def test_exit_3_on_ray_fails_the_run_and_mlrun_exits_3(tmp_path: Path, ray_address: str) -> None:
    sleeper(tmp_path)
    done = run_mlrun(
        "run", "sleeper", "-P", "code=3", "--no-env", "--backend", "ray", "--json",
        cwd=tmp_path, RAY_ADDRESS=ray_address,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    run = stored_run(tmp_path, str(run_json(done.stdout)["run_id"]))
    assert run.info.status.name == "FAILED"
    assert run.tags["mlrun.ray.address"] == ray_address


def test_detach_then_runs_wait_on_ray(tmp_path: Path, ray_address: str) -> None:
    sleeper(tmp_path)
    submitted = run_mlrun(
        "run", "sleeper", "-P", "code=3", "--no-env", "--backend", "ray", "--detach", "--json",
        "--backend-config", _config(ray_address), cwd=tmp_path,
    )  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    document = run_json(submitted.stdout)
    waited = run_mlrun("runs", "wait", str(document["run_id"]), cwd=tmp_path)
    assert waited.returncode == 3, waited.stderr
    assert waited.stdout.strip() == f"{document['run_id']} FAILED (exit code 3)"


def test_cancel_of_a_running_ray_job(tmp_path: Path, ray_address: str) -> None:
    from ray.job_submission import JobStatus, JobSubmissionClient

    sleeper(tmp_path)
    submitted = run_mlrun(
        "run", "sleeper", "-P", "seconds=300", "--no-env", "--backend", "ray", "--detach",
        "--json", "--backend-config", _config(ray_address), cwd=tmp_path,
    )  # fmt: skip
    document = run_json(submitted.stdout)
    run_id, job_id = str(document["run_id"]), str(document["job_id"])
    wait_for(lambda: stored_run(tmp_path, run_id).info.status.name == "RUNNING", 120, "RUNNING")
    cancelled = run_mlrun("runs", "cancel", run_id, cwd=tmp_path)
    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout == f"Run {run_id} KILLED\n"
    assert stored_run(tmp_path, run_id).info.status.name == "KILLED"
    assert JobSubmissionClient(ray_address).get_job_status(job_id) == JobStatus.STOPPED
