"""`--backend slurm` against a real one-node cluster (scripts/slurm.sh)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from mlrun_cli.tracking.file_store import FileStore
from mlrun_cli.tracking.stored_run import StoredRun
from tests.backends.engines import slurm_conf, slurm_job_state, wait_for
from tests.backends.jobs_common import (
    assert_finished_train,
    example_copy,
    run_json,
    sleeper,
    stored_run,
)
from tests.conftest import child_env, mlrun_command, run_mlrun, write_files

pytestmark = [pytest.mark.slow, pytest.mark.slurm]
__all__ = ["slurm_conf"]
CONFIG = json.dumps({"partition": "debug"})


def _config(**extra: object) -> str:
    return json.dumps({"partition": "debug", **extra})


def test_train_runs_on_slurm_and_finishes_with_its_records(tmp_path: Path, slurm_conf: str) -> None:
    project = example_copy(tmp_path)
    done = run_mlrun(
        "run", "example_project", "-e", "train", "--env-manager", "local", "-P", "alpha=0.01",
        "--backend", "slurm", "--backend-config", CONFIG, "--json",
        cwd=tmp_path, timeout=300, SLURM_CONF=slurm_conf,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    document = run_json(done.stdout)
    assert document["status"] == "FINISHED" and document["job_id"]
    assert "best cv score" in done.stderr  # streamed while the job ran (stdout is the JSON)
    assert_finished_train(tmp_path, str(document["run_id"]), "slurm", project)


def test_exit_3_on_the_node_fails_the_run_and_mlrun_exits_3(
    tmp_path: Path, slurm_conf: str
) -> None:
    sleeper(tmp_path)
    done = run_mlrun(
        "run", "sleeper", "-P", "code=3", "--no-env", "--backend", "slurm",
        "--backend-config", CONFIG, "--json", cwd=tmp_path, SLURM_CONF=slurm_conf,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    run = stored_run(tmp_path, str(run_json(done.stdout)["run_id"]))
    assert run.info.status.name == "FAILED"
    assert run.tags["mlrun.exit_code"] == "3"


def test_detach_then_runs_wait_gives_the_same_result(tmp_path: Path, slurm_conf: str) -> None:
    sleeper(tmp_path)
    submitted = run_mlrun(
        "run", "sleeper", "-P", "code=3", "--no-env", "--backend", "slurm",
        "--backend-config", CONFIG, "--detach", "--json", cwd=tmp_path, SLURM_CONF=slurm_conf,
    )  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    document = run_json(submitted.stdout)
    assert document["job_id"] and document["status"] == "SCHEDULED"
    waited = run_mlrun("runs", "wait", str(document["run_id"]), cwd=tmp_path, SLURM_CONF=slurm_conf)
    assert waited.returncode == 3, waited.stderr
    assert waited.stdout.strip() == f"{document['run_id']} FAILED (exit code 3)"
    logs = run_mlrun("runs", "logs", str(document["run_id"]), cwd=tmp_path)
    assert logs.stdout == "started\n" and logs.stderr == "done\n"


def test_cancel_of_a_running_job_kills_the_run_and_the_job(tmp_path: Path, slurm_conf: str) -> None:
    sleeper(tmp_path)
    submitted = run_mlrun(
        "run", "sleeper", "-P", "seconds=300", "--no-env", "--backend", "slurm",
        "--backend-config", CONFIG, "--detach", "--json", cwd=tmp_path, SLURM_CONF=slurm_conf,
    )  # fmt: skip
    document = run_json(submitted.stdout)
    run_id, job_id = str(document["run_id"]), str(document["job_id"])
    wait_for(lambda: stored_run(tmp_path, run_id).info.status.name == "RUNNING", 60, "RUNNING")
    cancelled = run_mlrun("runs", "cancel", run_id, cwd=tmp_path, SLURM_CONF=slurm_conf)
    assert cancelled.returncode == 0, cancelled.stderr
    assert stored_run(tmp_path, run_id).info.status.name == "KILLED"
    assert slurm_job_state(job_id, slurm_conf) == "CANCELLED"


def test_gc_settles_a_job_cancelled_while_pending(tmp_path: Path, slurm_conf: str) -> None:
    sleeper(tmp_path)
    submitted = run_mlrun(
        "run", "sleeper", "--no-env", "--backend", "slurm", "--detach", "--json",
        "--backend-config", _config(sbatch_args=["--begin=now+1hour"]),
        cwd=tmp_path, SLURM_CONF=slurm_conf,
    )  # fmt: skip
    document = run_json(submitted.stdout)
    run_id, job_id = str(document["run_id"]), str(document["job_id"])
    assert slurm_job_state(job_id, slurm_conf) == "PENDING"
    env = {**os.environ, "SLURM_CONF": slurm_conf}
    subprocess.run(["scancel", job_id], env=env, check=True)
    wait_for(lambda: slurm_job_state(job_id, slurm_conf) == "CANCELLED", 30, "CANCELLED")
    assert stored_run(tmp_path, run_id).info.status.name == "SCHEDULED"
    gc = run_mlrun("runs", "gc", cwd=tmp_path, SLURM_CONF=slurm_conf)
    assert gc.returncode == 0, gc.stderr
    assert f"Run {run_id}" in gc.stdout and "marked KILLED" in gc.stdout
    run = stored_run(tmp_path, run_id)
    assert run.info.status.name == "KILLED"
    assert run.tags["mlrun.engine.state"] == "CANCELLED"
    assert run.tags["mlrun.engine.reason"].startswith("CANCELLED")


def test_gc_settles_a_job_killed_by_its_time_limit(tmp_path: Path, slurm_conf: str) -> None:
    """Slurm's limits are whole minutes: this test takes a bit over one."""
    sleeper(tmp_path)
    submitted = run_mlrun(
        "run", "sleeper", "-P", "seconds=600", "--no-env", "--backend", "slurm", "--detach",
        "--json", "--backend-config", _config(time="1"), cwd=tmp_path, SLURM_CONF=slurm_conf,
    )  # fmt: skip
    document = run_json(submitted.stdout)
    run_id, job_id = str(document["run_id"]), str(document["job_id"])
    wait_for(lambda: slurm_job_state(job_id, slurm_conf) == "TIMEOUT", 180, "TIMEOUT")
    gc = run_mlrun("runs", "gc", cwd=tmp_path, SLURM_CONF=slurm_conf)
    assert gc.returncode == 0, gc.stderr
    run = stored_run(tmp_path, run_id)
    assert run.info.status.name == "FAILED"
    assert run.tags["mlrun.engine.reason"] == "TIMEOUT (TimeLimit)"


def test_ctrl_c_while_following_cancels_the_job(tmp_path: Path, slurm_conf: str) -> None:
    sleeper(tmp_path)
    follower = subprocess.Popen(
        mlrun_command("run", "sleeper", "-P", "seconds=300", "--no-env", "--backend", "slurm",
                      "--backend-config", CONFIG),
        cwd=tmp_path, env=child_env(SLURM_CONF=slurm_conf), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    store = FileStore(tmp_path / "mlruns")
    run = wait_for(
        lambda: next((r for r in _runs(store) if r.info.status.name == "RUNNING"), None),
        60,
        "the run to start on the node",
    )
    follower.send_signal(signal.SIGINT)
    assert follower.wait(timeout=60) == 130
    assert store.get_run(run.info.run_id).info.status.name == "KILLED"
    job_id = store.get_run(run.info.run_id).tags["mlrun.slurm.job_id"]
    wait_for(lambda: slurm_job_state(job_id, slurm_conf) == "CANCELLED", 30, "CANCELLED")


def _runs(store: FileStore) -> list[StoredRun]:
    return store.stored_runs(["0"]) if (store.root / "0").is_dir() else []


def test_an_env_build_failure_on_the_node_fails_the_run_with_exit_3(
    tmp_path: Path, slurm_conf: str
) -> None:
    write_files(tmp_path / "broken", {
        "MLproject": 'name: broken\npython_env: python_env.yaml\nentry_points:\n  main:\n    command: "python -c pass"\n',
        "python_env.yaml": 'python: "3.11"\ndependencies:\n  - mlrun-test-no-such-package-xyz\n',
    })  # fmt: skip
    done = run_mlrun(
        "run", "broken", "--env-manager", "uv", "--backend", "slurm", "--backend-config", CONFIG,
        "--json", cwd=tmp_path, timeout=300, SLURM_CONF=slurm_conf,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert "mlrun: error: installing dependencies failed" in done.stderr  # the node's own words
    run = stored_run(tmp_path, str(run_json(done.stdout)["run_id"]))
    assert run.info.status.name == "FAILED"
    artifacts = FileStore(tmp_path / "mlruns").artifact_dir(run.info)
    assert (artifacts / "environment" / "build.log").is_file()
