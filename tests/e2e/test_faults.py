"""Faults while running: signals while mlrun prepares a run, a runner killed with SIGKILL."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from mlrun_cli.tracking.entities import RunStatus
from mlrun_cli.tracking.file_store import FileStore
from tests.conftest import child_env, mlrun_command, write_files

DIGESTING = {
    "MLproject": """
entry_points:
  main:
    parameters:
      data: path
    command: "touch entry-point-ran"
""",
}


def wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def only_run(store: Path):
    [meta] = list(store.glob("0/*/meta.yaml"))
    return FileStore(store).read_run(meta.parent.name)


@pytest.mark.parametrize(
    ("signum", "exit_code"),
    [(signal.SIGTERM, 130), (signal.SIGHUP, 129), (signal.SIGINT, 130)],
)
def test_a_stop_signal_while_inputs_are_digested_ends_the_run_killed(
    tmp_path: Path, signum: int, exit_code: int
) -> None:
    project = write_files(tmp_path / "project", DIGESTING)
    with open(tmp_path / "big.bin", "wb") as data:
        data.truncate(64 << 30)  # sparse: takes no space, and far longer to digest than the test
    runner = subprocess.Popen(
        mlrun_command("run", "project", "--no-env", "-P", "data=big.bin"),
        cwd=tmp_path,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        wait_for(lambda: any((tmp_path / "mlruns").glob("0/*/meta.yaml")))  # the run exists
        runner.send_signal(signum)
        _, stderr = runner.communicate(timeout=30)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == exit_code, stderr
    assert "Traceback" not in stderr
    info, _, tags = only_run(tmp_path / "mlruns")
    assert info.status == RunStatus.KILLED and info.end_time is not None
    assert f"run {info.run_id} KILLED" in stderr
    assert not (project / "entry-point-ran").exists()
    record = tmp_path / "mlruns" / "0" / info.run_id / "artifacts" / "provenance" / "run.json"
    assert json.loads(record.read_text())["run"]["status"] == "KILLED"
    assert tags["mlrun.runner.pid"] == str(runner.pid)
