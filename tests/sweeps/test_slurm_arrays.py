"""`mlrun sweep --backend slurm`: one job array on a real one-node cluster (scripts/slurm.sh)."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from mlrun_cli.tracking.file_store import FileStore
from mlrun_cli.tracking.stored_run import StoredRun
from tests.backends.engines import slurm_job_state, wait_for
from tests.backends.jobs_common import sleeper
from tests.backends.test_slurm import as_from_a_terminal, started_on_node
from tests.conftest import child_env, mlrun_command, run_mlrun

pytestmark = [pytest.mark.slow, pytest.mark.slurm]
CONFIG = json.dumps({"partition": "debug"})


def _sweep(tmp_path: Path, conf: str, *args: str) -> tuple[int, dict[str, object], str]:
    config = json.dumps({"partition": "debug", "staging_dir": str(tmp_path / "staging")})
    done = run_mlrun(
        "sweep", "sleeper", "--no-env", "--backend", "slurm", "--backend-config", config,
        *args, "--json", cwd=tmp_path, timeout=300, SLURM_CONF=conf,
    )  # fmt: skip
    document: dict[str, object] = json.loads(done.stdout)["sweep"]
    return done.returncode, document, done.stderr


def _client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    import mlflow

    return mlflow.MlflowClient(tracking_uri=(tmp_path / "mlruns").as_uri())


def test_a_three_point_sweep_is_one_job_array_under_a_finished_parent(
    tmp_path: Path, slurm_conf: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeper(tmp_path)
    code, sweep, stderr = _sweep(tmp_path, slurm_conf, "-P", "seconds=0,1,2", "-j", "3")
    assert code == 0, stderr
    assert sweep["status"] == "FINISHED" and sweep["executed"] == 3
    children = sweep["children"]
    assert isinstance(children, list)
    assert [c["status"] for c in children] == ["FINISHED"] * 3
    assert "[2] started" in stderr  # each child's output, behind its number (stdout is JSON)
    client = _client(tmp_path, monkeypatch)
    parent = client.get_run(str(sweep["parent_run_id"]))
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["mlrun.sweep"] == "product"
    job_ids = []
    for child, seconds in zip(children, ("0", "1", "2"), strict=True):
        run = client.get_run(str(child["run_id"]))
        assert run.info.status == "FINISHED"
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.data.tags["mlrun.backend"] == "slurm"
        assert run.data.params["seconds"] == seconds
        job_ids.append(run.data.tags["mlrun.slurm.job_id"])
    array_ids = {job_id.partition("_")[0] for job_id in job_ids}
    assert len(array_ids) == 1, job_ids  # one array job: all children share its id
    [array_id] = array_ids
    assert job_ids == [f"{array_id}_0", f"{array_id}_1", f"{array_id}_2"]
    [script] = (tmp_path / "staging").glob("*/job.sbatch")  # one submission, one staging
    assert "#SBATCH --array=0-2\n" in script.read_text()


def test_one_failing_point_fails_the_parent_and_the_sweep_exits_non_zero(
    tmp_path: Path, slurm_conf: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeper(tmp_path)
    code, sweep, stderr = _sweep(tmp_path, slurm_conf, "-P", "code=0,3", "-j", "2")
    assert code == 1, stderr
    assert sweep["status"] == "FAILED"
    children = sweep["children"]
    assert isinstance(children, list)
    assert [c["status"] for c in children] == ["FINISHED", "FAILED"]
    client = _client(tmp_path, monkeypatch)
    assert client.get_run(str(sweep["parent_run_id"])).info.status == "FAILED"
    failed = client.get_run(str(children[1]["run_id"]))
    assert failed.data.tags["mlrun.exit_code"] == "3"
    [script] = (tmp_path / "staging").glob("*/job.sbatch")
    assert "#SBATCH --array=0-1\n" in script.read_text()


def test_fail_fast_cancels_the_rest_of_the_array(tmp_path: Path, slurm_conf: str) -> None:
    sleeper(tmp_path)
    code, sweep, stderr = _sweep(
        tmp_path, slurm_conf, "--zip", "-P", "code=3,0", "-P", "seconds=0,300", "-j", "2",
        "--fail-fast",
    )  # fmt: skip
    assert code == 1, stderr
    assert sweep["status"] == "FAILED"
    children = sweep["children"]
    assert isinstance(children, list)
    assert [c["status"] for c in children] == ["FAILED", "KILLED"]
    assert "--fail-fast after a failure" in stderr


def test_ctrl_c_cancels_the_array_and_kills_the_children_and_the_parent(
    tmp_path: Path, slurm_conf: str
) -> None:
    sleeper(tmp_path)
    follower = subprocess.Popen(
        mlrun_command("sweep", "sleeper", "--no-env", "--backend", "slurm", "--backend-config",
                      CONFIG, "-P", "seconds=300", "-P", "code=0,1,2", "-j", "3"),
        cwd=tmp_path, env=child_env(SLURM_CONF=slurm_conf), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, preexec_fn=as_from_a_terminal,
    )  # fmt: skip
    store = FileStore(tmp_path / "mlruns")

    def running_child() -> bool:
        runs = store.stored_runs(["0"]) if (store.root / "0").is_dir() else []
        return any(started_on_node(r) and "mlflow.parentRunId" in r.tags for r in runs)

    wait_for(running_child, 90, "a child to start on the node")
    follower.send_signal(signal.SIGINT)
    assert follower.wait(timeout=90) == 130

    def children() -> list[StoredRun]:
        """The children once all three read back (the nodes may still be writing their end)."""
        runs = [r for r in store.stored_runs(["0"]) if "mlflow.parentRunId" in r.tags]
        return runs if len(runs) == 3 else []

    assert {c.info.status.name for c in wait_for(children, 30, "three children")} == {"KILLED"}
    [parent] = [r for r in store.stored_runs(["0"]) if "mlrun.sweep" in r.tags]
    assert parent.info.status.name == "KILLED"
    for child in children():
        job_id = child.tags["mlrun.slurm.job_id"]
        wait_for(
            lambda j=job_id: slurm_job_state(j, slurm_conf) in ("CANCELLED", "FAILED"), 30, job_id
        )


def test_a_pending_array_stopped_by_ctrl_c_leaves_records_that_say_killed(
    tmp_path: Path, slurm_conf: str
) -> None:
    """No task ever started: each child's record, written when it was submitted, says KILLED
    once the sweep settled it, and the parent's summary lists them so."""
    sleeper(tmp_path)
    pending = json.dumps({"partition": "debug", "sbatch_args": ["--begin=now+1hour"]})
    sweep = subprocess.Popen(
        mlrun_command("sweep", "sleeper", "--no-env", "--backend", "slurm", "--backend-config",
                      pending, "-P", "code=0,1", "--json"),
        cwd=tmp_path, env=child_env(SLURM_CONF=slurm_conf), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    store = FileStore(tmp_path / "mlruns")

    def submitted() -> bool:
        runs = store.stored_runs(["0"]) if (store.root / "0").is_dir() else []
        return sum("mlrun.slurm.job_id" in r.tags for r in runs) == 2

    wait_for(submitted, 90, "the array's submission")
    sweep.send_signal(signal.SIGINT)
    out, err = sweep.communicate(timeout=120)
    assert sweep.returncode == 130, err
    printed = json.loads(out)["sweep"]
    assert [row["status"] for row in printed["children"]] == ["KILLED", "KILLED"]
    for row in printed["children"]:
        info = store.get_run(row["run_id"]).info
        record = json.loads(store.read_artifact(info, "provenance/run.json") or "{}")
        assert record["run"]["status"] == "KILLED" and record["run"]["end_time"] == info.end_time
    parent = store.get_run(printed["parent_run_id"]).info
    assert parent.status.name == "KILLED"
    summary = json.loads(store.read_artifact(parent, "sweep/summary.json") or "{}")
    assert summary == {"format": 1, "sweep": printed}
