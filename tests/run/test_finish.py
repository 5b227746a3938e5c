"""`finish_run`, the one way a run ends: its record says how it ended, its status is written
even when the record cannot be, and what it staged is published; a sweep's parent keeps its
summary."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlrun_cli.core.settings import Settings
from mlrun_cli.run.finish import finish_run
from mlrun_cli.tracking import artifacts
from mlrun_cli.tracking.entities import RunInfo, RunStatus
from mlrun_cli.tracking.file_store import FileStore
from mlrun_cli.tracking.rest_store import RestStore, open_rest_store
from tests.backends.jobs_common import sleeper
from tests.conftest import run_mlrun, write_files
from tests.servers import MlflowServer

FINAL = [RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED]


def _run(store: FileStore, status: RunStatus = RunStatus.RUNNING) -> RunInfo:
    store.ensure()
    info = store.create_run(store.get_experiment("0"), "r", "u", {})
    return store.set_run_status(info, status)


def _record(store: FileStore, info: RunInfo) -> dict[str, object]:
    text = store.read_artifact(info, artifacts.RUN_RECORD)
    assert text is not None
    document: dict[str, object] = json.loads(text)
    return document


@pytest.mark.parametrize("status", FINAL)
def test_the_record_made_at_the_end_says_what_the_store_says(
    tmp_path: Path, status: RunStatus
) -> None:
    store = FileStore(tmp_path / "mlruns")
    run = _run(store)
    ended = finish_run(
        store, run, status, end_time=run.start_time + 1500,
        record=lambda ended: {"entry_point": "main", "command": f"echo {ended.status.name}"},
        exit_code=7,
    )  # fmt: skip
    stored = store.get_run(run.run_id).info
    assert (stored.status, stored.end_time) == (status, run.start_time + 1500) == (
        ended.status, ended.end_time)  # fmt: skip
    record = _record(store, run)
    assert record["command"] == f"echo {status.name}"
    assert record["run"] == {
        "run_id": run.run_id,
        "experiment_id": "0",
        "status": status.name,
        "start_time": run.start_time,
        "end_time": run.start_time + 1500,
        "exit_code": 7,
    }


@pytest.mark.parametrize("status", FINAL)
def test_a_submitted_runs_record_gets_the_status_it_was_settled_with(
    tmp_path: Path, status: RunStatus
) -> None:
    """A job that ended without its node (cancelled while pending, its node lost) keeps the
    record its submitter wrote, now with how it ended, not SCHEDULED."""
    store = FileStore(tmp_path / "mlruns")
    run = _run(store, RunStatus.SCHEDULED)
    submitted = {"source": {"directory": "/home/u/p"}, "run": {"status": "SCHEDULED"}}
    store.write_artifact(run, artifacts.RUN_RECORD, json.dumps(submitted))
    finish_run(store, run, status)
    record = _record(store, run)
    assert record["source"] == {"directory": "/home/u/p"}
    assert record["run"]["status"] == status.name  # type: ignore[index]
    assert record["run"]["end_time"] == store.get_run(run.run_id).info.end_time  # type: ignore[index]


def test_a_record_that_cannot_be_made_still_ends_the_run(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "mlruns")
    run = _run(store)

    def unmakeable(ended: RunInfo) -> dict[str, object]:
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        finish_run(store, run, RunStatus.FINISHED, record=unmakeable)
    assert store.get_run(run.run_id).info.status == RunStatus.FINISHED  # never left RUNNING
    assert store.read_artifact(run, artifacts.RUN_RECORD) is None


@pytest.mark.parametrize("damage", ["{", "[1, 2]", ""])
def test_a_damaged_record_is_left_as_it_is_and_the_run_ends(tmp_path: Path, damage: str) -> None:
    store = FileStore(tmp_path / "mlruns")
    run = _run(store, RunStatus.SCHEDULED)
    store.write_artifact(run, artifacts.RUN_RECORD, damage)
    finish_run(store, run, RunStatus.KILLED)
    assert store.get_run(run.run_id).info.status == RunStatus.KILLED
    assert store.read_artifact(run, artifacts.RUN_RECORD) == damage


def test_a_run_without_a_record_gets_none(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "mlruns")
    run = _run(store)
    finish_run(store, run, RunStatus.FAILED)
    assert store.get_run(run.run_id).info.status == RunStatus.FAILED
    assert store.list_artifacts(run) == []


SCORES = {
    "MLproject": (
        'name: s\nentry_points:\n  main:\n    parameters: {x: int}\n    command: "echo x={x}"\n'
    )
}


def test_a_sweeps_parent_keeps_its_summary(cli, tmp_path: Path) -> None:
    write_files(tmp_path / "s", SCORES)
    result = cli("sweep", "s", "--no-env", "-P", "x=1,2", "--json")
    assert result.exit_code == 0, result.stderr
    printed = json.loads(result.stdout)["sweep"]
    store = FileStore(tmp_path / "mlruns")
    parent = store.get_run(printed["parent_run_id"])
    assert parent.info.status == RunStatus.FINISHED
    text = store.read_artifact(parent.info, artifacts.SWEEP_SUMMARY)
    assert text is not None
    assert json.loads(text) == {"format": 1, "sweep": printed}
    assert [child["status"] for child in printed["children"]] == ["FINISHED", "FINISHED"]


@pytest.mark.slow
@pytest.mark.slurm
def test_a_job_cancelled_while_pending_keeps_a_record_that_says_killed(
    tmp_path: Path, slurm_conf: str
) -> None:
    """Its node never ran: `runs cancel` settles it from Slurm, record included."""
    sleeper(tmp_path)
    pending = json.dumps({"partition": "debug", "sbatch_args": ["--begin=now+1hour"]})
    submitted = run_mlrun(
        "run", "sleeper", "--no-env", "--backend", "slurm", "--detach", "--json",
        "--backend-config", pending, cwd=tmp_path, SLURM_CONF=slurm_conf,
    )  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    run_id = str(json.loads(submitted.stdout)["run"]["run_id"])
    cancelled = run_mlrun("runs", "cancel", run_id, cwd=tmp_path, SLURM_CONF=slurm_conf)
    assert (cancelled.returncode, cancelled.stdout) == (0, f"Run {run_id} KILLED\n")
    store = FileStore(tmp_path / "mlruns")
    run = store.get_run(run_id).info
    record = _record(store, run)
    assert record["run"]["status"] == "KILLED"  # type: ignore[index]
    assert record["run"]["end_time"] == run.end_time  # type: ignore[index]
    assert record["source"]["directory"] == str(tmp_path / "sleeper")  # type: ignore[index]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    data = tmp_path_factory.mktemp("finish-server")
    started = MlflowServer(f"sqlite:///{data / 'mlflow.db'}", data).start()
    yield started
    started.stop()


def _end_killed(store: RestStore, run: RunInfo, failures: list[BaseException]) -> None:
    try:
        finish_run(store, run, RunStatus.KILLED)
    except BaseException as exc:  # the test reports it
        failures.append(exc)


@pytest.mark.slow
def test_two_mlruns_ending_one_run_at_once_both_publish_it_whole(
    tmp_path: Path, server: MlflowServer
) -> None:
    """An attached follower and `runs cancel` in another shell settle the same job together:
    each publishes what is staged for it, in the same folder; neither fails, nothing is lost."""
    settings = Settings.resolve(server.uri, tmp_path)
    first, second = open_rest_store(settings), open_rest_store(settings)
    first.ensure()
    experiment = first.get_experiment("0")
    for attempt in range(8):
        run = first.create_run(experiment, f"raced-{attempt}", "u", {})
        submitted = {"source": {"directory": str(tmp_path)}, "run": {"status": "SCHEDULED"}}
        first.write_artifact(run, artifacts.RUN_RECORD, json.dumps(submitted))
        first.publish(run)  # as a submitter does: both enders update this record
        staged = {f"logs/part-{n:02d}.log": f"part {n}\n" for n in range(40)}
        for relative, text in staged.items():
            first.write_artifact(run, relative, text)
        failures: list[BaseException] = []
        threads = [
            threading.Thread(target=_end_killed, args=(store, run, failures))
            for store in (first, second)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert failures == []
        listed = dict(first.list_artifacts(run))
        assert {p: listed.get(p) for p in staged} == {p: len(t) for p, t in staged.items()}
        record = json.loads(first.read_artifact(run, artifacts.RUN_RECORD) or "{}")
        assert record["run"]["status"] == "KILLED"
        assert first.get_run(run.run_id).info.status == RunStatus.KILLED
