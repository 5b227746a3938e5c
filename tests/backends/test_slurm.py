"""`--backend slurm` against a real one-node cluster (scripts/slurm.sh)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from mlrun_cli.core.caches import staging_dir
from mlrun_cli.tracking.artifacts import RUN_RECORD
from mlrun_cli.tracking.file_store import FileStore
from mlrun_cli.tracking.stored_run import StoredRun
from tests.backends.engines import slurm_job_state, wait_for
from tests.backends.jobs_common import (
    assert_finished_train,
    example_copy,
    run_json,
    sleeper,
    started_on_node,
    stored_run,
    stored_runs,
    time_out_once_started,
)
from tests.conftest import child_env, mlrun_command, run_mlrun, write_files

pytestmark = [pytest.mark.slow, pytest.mark.slurm]
CONFIG = json.dumps({"partition": "debug"})
# A job mlrun cancels: CANCELLED by Slurm, or FAILED when the node's mlrun, which the cancel
# stopped first, ended it with 128+N before Slurm's cancel came.
_STOPPED = ("CANCELLED", "FAILED")


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
    assert slurm_job_state(job_id, slurm_conf) in _STOPPED


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
    sleeper(tmp_path)
    submitted = run_mlrun(
        "run", "sleeper", "-P", "seconds=600", "--no-env", "--backend", "slurm", "--detach",
        "--json", "--backend-config", _config(time="1"), cwd=tmp_path, SLURM_CONF=slurm_conf,
    )  # fmt: skip
    document = run_json(submitted.stdout)
    run_id, job_id = str(document["run_id"]), str(document["job_id"])
    time_out_once_started(tmp_path, slurm_conf, jobs=1)
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
        stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, preexec_fn=as_from_a_terminal,
    )  # fmt: skip
    store = FileStore(tmp_path / "mlruns")
    run = wait_for(
        lambda: next((r for r in stored_runs(store) if started_on_node(r)), None),
        60,
        "the run to start on the node",
    )
    follower.send_signal(signal.SIGINT)
    assert follower.wait(timeout=60) == 130
    assert store.get_run(run.info.run_id).info.status.name == "KILLED"
    job_id = store.get_run(run.info.run_id).tags["mlrun.slurm.job_id"]
    wait_for(lambda: slurm_job_state(job_id, slurm_conf) in _STOPPED, 30, "the job's end")


@pytest.mark.parametrize("attempt", range(5))
def test_ctrl_c_the_moment_the_run_appears_ends_it_killed_and_leaves_no_job(
    tmp_path: Path, slurm_conf: str, attempt: int
) -> None:
    """Ctrl-C while the submitter is still recording the run (the store is watched without
    pausing, so the signal lands inside the creation, the staging or sbatch): the run is
    KILLED, never gone from the store nor left RUNNING, and no job of it is left queued."""
    sleeper(tmp_path)
    follower = subprocess.Popen(
        mlrun_command("run", "sleeper", "-P", "seconds=300", "--no-env", "--backend", "slurm",
                      "--backend-config", CONFIG),
        cwd=tmp_path, env=child_env(SLURM_CONF=slurm_conf), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, preexec_fn=as_from_a_terminal,
    )  # fmt: skip
    store = FileStore(tmp_path / "mlruns")
    runs: list[StoredRun] = []
    while not runs and follower.poll() is None:
        runs = stored_runs(store)
    follower.send_signal(signal.SIGINT)
    _, err = follower.communicate(timeout=60)
    assert follower.returncode == 130, err
    [run] = runs
    after = store.get_run(run.info.run_id)
    assert after.info.status.name == "KILLED"
    queued = subprocess.run(
        ["squeue", "-h", "-n", f"mlrun-{run.info.run_id}", "-o", "%i %T"],
        capture_output=True, text=True, env=child_env(SLURM_CONF=slurm_conf),
    ).stdout  # fmt: skip
    assert queued.strip() == "" or after.tags.get("mlrun.slurm.job_id"), queued
    if "mlrun.slurm.job_id" in after.tags:
        job_id = after.tags["mlrun.slurm.job_id"]
        wait_for(lambda: slurm_job_state(job_id, slurm_conf) in _STOPPED, 30, "the job's end")


def as_from_a_terminal() -> None:
    """The follower as a terminal starts it, Ctrl-C at its default: a runner started in the
    background by a script (which bash starts with SIGINT ignored) must not pass that on."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


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


# A step interrupted by the cancel, and one that must never run after it.
STEPPER = {
    "MLproject": (
        'name: stepper\nentry_points:\n  main:\n    command: "echo start; sleep 300; echo end"\n'
    )
}
# When the cancel comes: before the job starts, as the node claims the run, during the step;
# the last one is Ctrl-C of an attached run.
_MOMENTS = ("submitted", "running", "started", "ctrl-c")


def _stdout_log(tmp_path: Path, run_id: str) -> str:
    run = stored_run(tmp_path, run_id)
    path = FileStore(tmp_path / "mlruns").artifact_dir(run.info) / "logs" / "stdout.log"
    return path.read_text() if path.is_file() else ""


def _job_out(run_id: str) -> str:
    path = staging_dir(os.environ) / run_id / "job.out"
    return path.read_text() if path.is_file() else ""


def _assert_cancelled(tmp_path: Path, run_id: str, job_id: str, conf: str) -> None:
    """KILLED by the engine's cancel, with a signal's exit code; nothing after the step ran."""
    run = stored_run(tmp_path, run_id)
    assert run.info.status.name == "KILLED", run.tags
    assert int(run.tags["mlrun.exit_code"]) > 128, run.tags
    assert run.tags["mlrun.engine.state"] in _STOPPED
    assert slurm_job_state(job_id, conf) in _STOPPED
    assert "end" not in _stdout_log(tmp_path, run_id).split()
    assert "end" not in _job_out(run_id).splitlines()


def _cancel_detached(tmp_path: Path, conf: str, moment: str) -> None:
    submitted = run_mlrun(
        "run", "stepper", "--no-env", "--backend", "slurm", "--backend-config", CONFIG,
        "--detach", "--json", cwd=tmp_path, SLURM_CONF=conf,
    )  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    document = run_json(submitted.stdout)
    run_id, job_id = str(document["run_id"]), str(document["job_id"])
    follower = subprocess.Popen(
        mlrun_command("runs", "logs", "-f", run_id), cwd=tmp_path,
        env=child_env(SLURM_CONF=conf), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    if moment == "running":
        wait_for(lambda: stored_run(tmp_path, run_id).info.status.name != "SCHEDULED", 60,
                 "the node to claim the run")  # fmt: skip
    elif moment == "started":
        wait_for(lambda: "start" in _stdout_log(tmp_path, run_id), 60, "the step to start")
    cancelled = run_mlrun("runs", "cancel", run_id, cwd=tmp_path, SLURM_CONF=conf)
    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout == f"Run {run_id} KILLED\n"
    followed, _ = follower.communicate(timeout=60)
    assert b"end" not in followed.split()
    _assert_cancelled(tmp_path, run_id, job_id, conf)


def _interrupt_attached(tmp_path: Path, conf: str) -> None:
    attached = subprocess.Popen(
        mlrun_command("run", "stepper", "--no-env", "--backend", "slurm", "--backend-config",
                      CONFIG, "--json"),
        cwd=tmp_path, env=child_env(SLURM_CONF=conf), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, preexec_fn=as_from_a_terminal,
    )  # fmt: skip
    store = FileStore(tmp_path / "mlruns")
    run = wait_for(
        lambda: next((r for r in stored_runs(store) if started_on_node(r)), None),
        60,
        "the run to start on the node",
    )
    run_id = run.info.run_id
    wait_for(lambda: "start" in _stdout_log(tmp_path, run_id), 60, "the step to start")
    attached.send_signal(signal.SIGINT)
    out, err = attached.communicate(timeout=60)
    assert attached.returncode == 130, err
    assert run_json(out.decode())["status"] == "KILLED"
    _assert_cancelled(tmp_path, run_id, run.tags["mlrun.slurm.job_id"], conf)


@pytest.mark.parametrize("attempt", range(20))
def test_a_cancelled_job_stops_at_once_and_is_recorded_killed(
    tmp_path: Path, slurm_conf: str, attempt: int
) -> None:
    """20 cancels at every moment of a job's life, each `runs cancel` with `runs logs -f`
    following: never FINISHED, never exit code 0, never a step after the interrupted one."""
    write_files(tmp_path / "stepper", STEPPER)
    moment = _MOMENTS[attempt % len(_MOMENTS)]
    if moment == "ctrl-c":
        _interrupt_attached(tmp_path, slurm_conf)
    else:
        _cancel_detached(tmp_path, slurm_conf, moment)


def test_an_attached_run_that_times_out_records_what_runs_wait_records(
    tmp_path: Path, slurm_conf: str
) -> None:
    """The same time limit, attached and detached (settled by `runs wait`), side by side.
    The node saw only a signal and recorded KILLED; Slurm says TIMEOUT, a failure: each
    run's record (provenance/run.json) says what the store says."""
    sleeper(tmp_path)
    args = ("run", "sleeper", "-P", "seconds=600", "--no-env", "--backend", "slurm", "--json",
            "--backend-config", _config(time="1"))  # fmt: skip
    attached = subprocess.Popen(
        mlrun_command(*args), cwd=tmp_path, env=child_env(SLURM_CONF=slurm_conf),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    detached = run_mlrun(*args, "--detach", cwd=tmp_path, SLURM_CONF=slurm_conf)
    detached_id = str(run_json(detached.stdout)["run_id"])
    time_out_once_started(tmp_path, slurm_conf, jobs=2)
    waited = run_mlrun("runs", "wait", detached_id, cwd=tmp_path, timeout=240,
                       SLURM_CONF=slurm_conf)  # fmt: skip
    out, err = attached.communicate(timeout=240)
    attached_id = str(run_json(out.decode())["run_id"])
    records = []
    for run_id in (attached_id, detached_id):
        run = stored_run(tmp_path, run_id)
        record = json.loads(
            FileStore(tmp_path / "mlruns").read_artifact(run.info, RUN_RECORD) or "{}"
        )
        records.append((run.info.status.name, run.tags.get("mlrun.engine.state"),
                        run.tags.get("mlrun.engine.reason"), run.tags.get("mlrun.exit_code"),
                        record["run"]["status"], record["run"]["exit_code"]))  # fmt: skip
    assert records[0] == records[1] == (
        "FAILED", "TIMEOUT", "TIMEOUT (TimeLimit)", "143", "FAILED", 143
    ), err  # fmt: skip
    assert attached.returncode == waited.returncode == 143


def test_a_wrong_mlrun_command_shows_the_nodes_own_error(tmp_path: Path, slurm_conf: str) -> None:
    sleeper(tmp_path)
    done = run_mlrun(
        "run", "sleeper", "--no-env", "--backend", "slurm",
        "--backend-config", _config(mlrun_command="/opt/no-such-mlrun/bin/mlrun"),
        cwd=tmp_path, SLURM_CONF=slurm_conf,
    )  # fmt: skip
    assert done.returncode == 127, done.stderr
    assert "/opt/no-such-mlrun/bin/mlrun: No such file or directory" in done.stderr


def test_an_sbatch_refusal_says_what_is_wrong(tmp_path: Path, slurm_conf: str) -> None:
    sleeper(tmp_path)
    done = run_mlrun(
        "run", "sleeper", "--no-env", "--backend", "slurm",
        "--backend-config", _config(sbatch_args=["--no-such-option"]),
        cwd=tmp_path, SLURM_CONF=slurm_conf,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "sbatch refused the job: sbatch: unrecognized option '--no-such-option'" in done.stderr
    assert "--help" not in done.stderr


def test_the_summary_of_an_attached_run_gives_the_entry_points_own_time(
    tmp_path: Path, slurm_conf: str
) -> None:
    sleeper(tmp_path)
    done = run_mlrun(
        "run", "sleeper", "-P", "seconds=1", "--no-env", "--backend", "slurm",
        "--backend-config", CONFIG, "--json", cwd=tmp_path, SLURM_CONF=slurm_conf,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    run = stored_run(tmp_path, str(run_json(done.stdout)["run_id"]))
    summary = re.search(r"entry point ([\d.]+)s, total ([\d.]+)s", done.stderr)
    assert summary is not None, done.stderr
    entry_point, total = float(summary[1]), float(summary[2])
    assert entry_point == pytest.approx(float(run.tags["mlrun.duration_s"]), abs=0.01)
    assert 1.0 <= entry_point <= total
