"""`--backend ray` against a real Ray head started for the session (tests/backends/engines.py)."""

from __future__ import annotations

import json
import shlex
import socket
import sys
from pathlib import Path

import pytest

from mlrun_cli.tracking.file_store import FileStore
from tests.backends.engines import ray_head, stop_ray_head, wait_for
from tests.backends.jobs_common import (
    assert_finished_train,
    example_copy,
    run_json,
    sleeper,
    stored_run,
)
from tests.conftest import run_mlrun

pytestmark = [pytest.mark.slow, pytest.mark.ray]


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
    run = stored_run(tmp_path, run_id)
    assert run.info.status.name == "KILLED"
    assert run.tags["mlrun.exit_code"] == "143"
    assert JobSubmissionClient(ray_address).get_job_status(job_id) == JobStatus.STOPPED


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _detached(tmp_path: Path, config: dict[str, object], *params: str) -> dict[str, object]:
    submitted = run_mlrun(
        "run", "sleeper", *params, "--no-env", "--backend", "ray", "--detach", "--json",
        "--backend-config", json.dumps(config), cwd=tmp_path,
    )  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    return run_json(submitted.stdout)


def test_a_job_stopped_before_mlrun_started_on_the_node_is_killed_with_exit_code_143(
    tmp_path: Path, ray_address: str
) -> None:
    """Cancelled while the job's command had not reached mlrun (here: a slow start): the
    engine settles the run KILLED, with 128+SIGTERM as a local run killed by SIGTERM."""
    from ray.job_submission import JobStatus, JobSubmissionClient

    sleeper(tmp_path)
    config = {"address": ray_address, "mlrun_command": "sh -c 'sleep 300'"}
    document = _detached(tmp_path, config)
    run_id, job_id = str(document["run_id"]), str(document["job_id"])
    client = JobSubmissionClient(ray_address)
    wait_for(lambda: client.get_job_status(job_id) == JobStatus.RUNNING, 120, "job RUNNING")
    cancelled = run_mlrun("runs", "cancel", run_id, cwd=tmp_path)
    assert cancelled.returncode == 0, cancelled.stderr
    run = stored_run(tmp_path, run_id)
    assert run.info.status.name == "KILLED"
    assert run.tags["mlrun.exit_code"] == "143"


@pytest.mark.parametrize("variable", ["RAY_ADDRESS", "RAY_API_SERVER_ADDRESS"])
def test_the_config_address_wins_over_the_environment_and_is_recorded(
    tmp_path: Path, ray_address: str, variable: str
) -> None:
    sleeper(tmp_path)
    elsewhere = f"http://127.0.0.1:{_closed_port()}"
    done = run_mlrun(
        "run", "sleeper", "-P", "code=3", "--no-env", "--backend", "ray", "--json",
        "--backend-config", json.dumps({"address": ray_address}), cwd=tmp_path,
        **{variable: elsewhere},
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    run_id = str(run_json(done.stdout)["run_id"])
    assert stored_run(tmp_path, run_id).tags["mlrun.ray.address"] == ray_address
    waited = run_mlrun("runs", "wait", run_id, cwd=tmp_path, **{variable: elsewhere})
    assert waited.returncode == 3, waited.stderr


def test_ray_logs_stay_off_mlrun_stderr_and_a_failed_jobs_log_is_an_artifact(
    tmp_path: Path, ray_address: str
) -> None:
    """A job that fails before mlrun runs on the node (a broken mlrun_command) is settled
    from Ray's word: a one-line reason tag, and Ray's log tail as logs/engine.log, with the
    credentials the job could print masked."""
    sleeper(tmp_path)
    code = (
        "import os, sys; print('x' * 30000); print(os.environ['MLFLOW_TRACKING_PASSWORD']); "
        "print('the-last-line'); sys.exit(7)"
    )
    config = {"address": ray_address, "mlrun_command": shlex.join([sys.executable, "-c", code])}
    done = run_mlrun(
        "run", "sleeper", "--no-env", "--backend", "ray", "--json",
        "--backend-config", json.dumps(config), cwd=tmp_path,
        MLFLOW_TRACKING_PASSWORD="pw-of-the-ray-test",
    )  # fmt: skip
    assert done.returncode == 7, done.stderr
    assert " INFO " not in done.stderr and "dashboard_sdk" not in done.stderr, done.stderr
    assert all(line.startswith("mlrun") for line in done.stderr.splitlines()), done.stderr
    run = stored_run(tmp_path, str(run_json(done.stdout)["run_id"]))
    assert run.info.status.name == "FAILED"
    reason = run.tags["mlrun.engine.reason"]
    assert "\n" not in reason and len(reason) <= 300, reason[:400]
    assert "exit code 7" in reason
    engine_log = FileStore(tmp_path / "mlruns").artifact_dir(run.info) / "logs" / "engine.log"
    assert "the-last-line" in engine_log.read_text()
    assert "pw-of-the-ray-test" not in engine_log.read_text() + reason  # a credential is masked
    assert "***" in engine_log.read_text()


def test_a_run_whose_ray_head_is_gone_is_settled_failed_after_the_stated_time(
    tmp_path: Path,
) -> None:
    """The head is stopped while three runs run: `runs gc` names the unreachable engine and
    leaves them; after the config's `unreachable_after`, `runs cancel`, `runs wait` and
    `runs gc` each settle one FAILED with a one-line reason; nothing is left RUNNING."""
    sleeper(tmp_path)
    with ray_head() as (address, head):
        config = {"address": address, "unreachable_after": 4}
        run_ids = [str(_detached(tmp_path, config, "-P", "seconds=300")["run_id"])
                   for _ in range(3)]  # fmt: skip
        for run_id in run_ids:
            wait_for(lambda r=run_id: stored_run(tmp_path, r).info.status.name == "RUNNING",
                     120, "RUNNING")  # fmt: skip
        stop_ray_head(head)
    first_gc = run_mlrun("runs", "gc", cwd=tmp_path)
    assert first_gc.returncode == 0, first_gc.stderr
    assert first_gc.stdout.splitlines()[-1] == "0 stuck runs found"
    for run_id in run_ids:
        assert f"run {run_id}" in first_gc.stderr and address in first_gc.stderr
    assert "Traceback" not in first_gc.stderr

    cancelled = run_mlrun("runs", "cancel", run_ids[0], cwd=tmp_path)
    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout == f"Run {run_ids[0]} FAILED\n"
    waited = run_mlrun("runs", "wait", run_ids[1], cwd=tmp_path)
    assert waited.returncode == 1, waited.stderr
    assert waited.stdout == f"{run_ids[1]} FAILED (exit code 1)\n"
    gc = run_mlrun("runs", "gc", cwd=tmp_path)
    assert gc.returncode == 0, gc.stderr
    assert f"Run {run_ids[2]}" in gc.stdout and address in gc.stdout
    assert gc.stdout.splitlines()[-1] == "1 stuck run found"
    for run_id in run_ids:
        run = stored_run(tmp_path, run_id)
        assert run.info.status.name == "FAILED"
        assert run.tags["mlrun.engine.state"] == "UNREACHABLE"
        reason = run.tags["mlrun.engine.reason"]
        assert address in reason and "\n" not in reason, reason
