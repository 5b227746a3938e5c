"""Faults while running: signals while mlrun prepares a run, a runner killed with SIGKILL."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from mlrun_cli.run.runner_identity import end_recorded_group, group_members, start_ticks
from mlrun_cli.tracking.entities import RunStatus
from mlrun_cli.tracking.file_store import FileStore
from mlrun_cli.tracking.tags import PGID_START_TAG, PGID_TAG
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
    ("signum", "exit_code", "storm"),
    [
        (signal.SIGTERM, 130, 1),
        (signal.SIGHUP, 129, 1),
        (signal.SIGINT, 130, 1),
        (signal.SIGINT, 130, 50),  # the signals after the first never break into the cleanup
        (signal.SIGTERM, 130, 50),
    ],
)
def test_a_stop_signal_while_inputs_are_digested_ends_the_run_killed(
    tmp_path: Path, signum: int, exit_code: int, storm: int
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
        for _ in range(storm):
            if runner.poll() is None:
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
    assert tags["mlrun.exit_code"] == str(128 + signum)


# SIGHUP ignored: when a stopped supervisor is killed, the kernel may hang up its orphaned
# group (SIGHUP, SIGCONT), which would end the entry point before gc can show it does.
WAITING = {
    "MLproject": "entry_points:\n  main:\n    command: \"trap '' HUP; echo ready; sleep 60\"\n"
}


def start_waiting_run(tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path, int]:
    """A runner whose entry point is running; its run's folder and the entry point's group."""
    write_files(tmp_path / "project", WAITING)
    runner = subprocess.Popen(
        mlrun_command("run", "project", "--no-env"),
        cwd=tmp_path,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    assert runner.stdout is not None and runner.stdout.readline() == b"ready\n"
    [meta] = (tmp_path / "mlruns").glob("0/*/meta.yaml")
    return runner, meta.parent, int((meta.parent / "tags" / PGID_TAG).read_text())


def run_name(run_dir: Path) -> str:
    return (run_dir / "tags" / "mlflow.runName").read_text()


def gc_and_status(tmp_path: Path, run_dir: Path) -> tuple[str, RunStatus]:
    done = subprocess.run(
        mlrun_command("runs", "gc"), cwd=tmp_path, env=child_env(), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout, FileStore(tmp_path / "mlruns").read_run(run_dir.name)[0].status


def test_the_entry_point_does_not_outlive_a_runner_killed_with_sigkill(tmp_path: Path) -> None:
    runner, run_dir, group = start_waiting_run(tmp_path)
    assert group_members(group)  # the supervisor, bash and sleep
    runner.kill()
    runner.wait()
    # The supervisor ends its group at once, and itself as soon as nothing else is left (not
    # after its grace period, 10 s).
    wait_for(lambda: not group_members(group), timeout=3.0)
    output, status = gc_and_status(tmp_path, run_dir)
    assert output == f"Run {run_dir.name} ({run_name(run_dir)}) marked KILLED\n1 stuck run found\n"
    assert status == RunStatus.KILLED


def all_threads_stopped(pid: int) -> bool:
    """Whether every thread of the process is stopped (state T in /proc)."""
    states = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            states.append((task / "stat").read_text().rsplit(")", 1)[1].split()[0])
    return bool(states) and all(state == "T" for state in states)


def test_gc_kills_what_is_left_of_a_run_whose_runner_and_supervisor_died(tmp_path: Path) -> None:
    runner, run_dir, group = start_waiting_run(tmp_path)
    os.kill(group, signal.SIGSTOP)  # the supervisor cannot act...
    # ...once every thread of it has stopped: a stop is pending until each thread runs, and
    # on a busy machine the thread that sees the runner die could run first and end the group.
    wait_for(lambda: all_threads_stopped(group))
    runner.kill()
    runner.wait()
    os.kill(group, signal.SIGKILL)  # ...and dies with the runner: the entry point runs on
    wait_for(lambda: start_ticks(group) is None or group not in group_members(group))
    assert group_members(group), "the entry point should still be running"
    output, status = gc_and_status(tmp_path, run_dir)
    assert "marked KILLED; its leftover processes were killed\n" in output
    assert status == RunStatus.KILLED
    wait_for(lambda: not group_members(group))
    assert gc_and_status(tmp_path, run_dir)[0] == "0 stuck runs found\n"


def test_gc_never_signals_a_group_whose_id_was_reused(tmp_path: Path) -> None:
    stranger = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        ticks = start_ticks(stranger.pid)
        assert ticks is not None
        tags = {"mlrun.runner.host": socket.gethostname(), PGID_TAG: str(stranger.pid)}
        run_id = "0" * 32
        assert not end_recorded_group({**tags, PGID_START_TAG: str(int(ticks) - 1)}, run_id)
        assert not end_recorded_group(tags, run_id)  # no start time recorded: no way to be sure
        assert stranger.poll() is None
        assert end_recorded_group({**tags, PGID_START_TAG: ticks}, run_id)
        assert stranger.wait(timeout=10) == -signal.SIGKILL
    finally:
        stranger.kill()
        stranger.wait()


def test_gc_never_signals_a_leaderless_group_that_reuses_a_recorded_id(tmp_path: Path) -> None:
    """A recorded group ended long ago; its id now belongs to a stranger's group whose leader
    has exited too (pid reuse: 32768 ids go round fast on a busy machine). Its members all
    started after the recorded leader, as the run's own would have: not enough to kill them."""
    stranger = subprocess.Popen(["sh", "-c", "sleep 60 & echo $!"], start_new_session=True,
                                stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert stranger.stdout is not None
    sleeper = int(stranger.stdout.readline())
    stranger.wait()  # the leader is gone, its sleep goes on in the group
    try:
        ticks = start_ticks(sleeper)
        assert ticks is not None and group_members(stranger.pid)
        tags = {"mlrun.runner.host": socket.gethostname(), PGID_TAG: str(stranger.pid),
                PGID_START_TAG: str(int(ticks) - 1)}  # fmt: skip
        assert not end_recorded_group(tags, "0" * 32)
        assert start_ticks(sleeper) == ticks, "a stranger's process was killed"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(sleeper, signal.SIGKILL)


LEAVING = {"MLproject": 'entry_points:\n  main:\n    command: "sleep 300 >/dev/null 2>&1 &"\n'}


def test_gc_ends_what_a_finished_run_left_in_its_group(tmp_path: Path) -> None:
    write_files(tmp_path / "project", LEAVING)
    done = subprocess.run(mlrun_command("run", "project", "--no-env"), cwd=tmp_path,
                          env=child_env(), capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    [meta] = (tmp_path / "mlruns").glob("0/*/meta.yaml")
    run_dir = meta.parent
    group = int((run_dir / "tags" / PGID_TAG).read_text())
    assert group_members(group), "the entry point's background sleep should still run"
    output, status = gc_and_status(tmp_path, run_dir)
    assert output == (
        f"Run {run_dir.name} ({run_name(run_dir)}) had ended FINISHED; its leftover processes "
        "were killed\n1 stuck run found\n"
    )
    assert status == RunStatus.FINISHED
    wait_for(lambda: not group_members(group))
    assert gc_and_status(tmp_path, run_dir)[0] == "0 stuck runs found\n"
