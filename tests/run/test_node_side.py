"""`mlrun run --run-id`: the node's side of a submitted run, and `runs logs` for local runs."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from mlrun_cli.tracking.entities import RunStatus
from mlrun_cli.tracking.file_store import FileStore
from tests.conftest import child_env, mlrun_command, write_files

PROJECT = {"MLproject": 'name: t\nentry_points:\n  main:\n    command: "echo out; echo err >&2"\n'}


def _scheduled_run(tmp_path: Path) -> str:
    store = FileStore(tmp_path / "mlruns")
    store.ensure()
    experiment = store.get_experiment("0")
    info = store.create_run(experiment, "r", "u", {"mlflow.source.name": "submitted"})
    store.set_run_status(info, RunStatus.SCHEDULED)
    return info.run_id


def test_run_id_continues_a_scheduled_run_and_keeps_the_submitters_tags(
    cli, tmp_path: Path
) -> None:
    write_files(tmp_path / "p", PROJECT)
    run_id = _scheduled_run(tmp_path)
    result = cli("run", "p", "--no-env", "--run-id", run_id)
    assert result.exit_code == 0, result.stderr
    run = FileStore(tmp_path / "mlruns").get_run(run_id)
    assert run.info.status == RunStatus.FINISHED
    assert run.tags["mlflow.source.name"] == "submitted"
    assert "mlrun.runner.pid" in run.tags
    assert len(FileStore(tmp_path / "mlruns").stored_runs(["0"])) == 1


def test_run_id_of_a_finished_run_is_refused(cli, tmp_path: Path) -> None:
    write_files(tmp_path / "p", PROJECT)
    run_id = _scheduled_run(tmp_path)
    assert cli("run", "p", "--no-env", "--run-id", run_id).exit_code == 0
    again = cli("run", "p", "--no-env", "--run-id", run_id)
    assert again.exit_code == 2
    assert again.stderr == (
        f"mlrun: error: --run-id {run_id}: the run is already FINISHED; --run-id continues a "
        "SCHEDULED or RUNNING run\n"
    )


def test_runs_logs_prints_a_local_runs_output(cli, tmp_path: Path) -> None:
    write_files(tmp_path / "p", PROJECT)
    run_id = _scheduled_run(tmp_path)
    assert cli("run", "p", "--no-env", "--run-id", run_id).exit_code == 0
    logs = cli("runs", "logs", run_id[:8])
    assert (logs.exit_code, logs.stdout, logs.stderr) == (0, "out\n", "err\n")


def test_cancel_of_a_local_run_is_refused(cli, tmp_path: Path) -> None:
    write_files(tmp_path / "p", PROJECT)
    run_id = _scheduled_run(tmp_path)
    result = cli("runs", "cancel", run_id)
    assert result.exit_code == 2
    assert "ran on this machine, not as a job" in result.stderr


# An entry point that takes the stop signal and exits 0 (as a shell step often does).
OBLIGING = {
    "MLproject": (
        "name: t\nentry_points:\n  main:\n"
        "    command: \"trap 'exit 0' TERM; echo ready; sleep 300 & wait\"\n"
    )
}


def test_a_node_stopped_by_sigterm_records_killed_with_a_signals_exit_code(
    tmp_path: Path,
) -> None:
    """A cancelled job's node gets SIGTERM; the entry point exiting 0 does not make it 0."""
    write_files(tmp_path / "p", OBLIGING)
    run_id = _scheduled_run(tmp_path)
    node = subprocess.Popen(
        mlrun_command("run", "p", "--no-env", "--run-id", run_id), cwd=tmp_path,
        env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert node.stdout is not None
    assert node.stdout.readline() == "ready\n"
    node.send_signal(signal.SIGTERM)
    assert node.wait(timeout=60) == 130
    run = FileStore(tmp_path / "mlruns").get_run(run_id)
    assert run.info.status == RunStatus.KILLED
    assert int(run.tags["mlrun.exit_code"]) > 128
