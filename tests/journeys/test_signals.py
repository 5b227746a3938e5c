"""A user stops real `mlrun run` processes whose entry points leave children behind: Ctrl-C,
SIGTERM, a storm of both, and GNU `timeout` (which signals its command twice). Each time mlrun
exits promptly with 130, nothing of the entry point's process group is left, and the run is
KILLED with a non-zero exit code, as `mlrun runs describe` and MLflow's client show it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import child_env, mlrun_command, run_mlrun, write_files

pytestmark = [pytest.mark.journey, pytest.mark.slow]

GRACE_SECONDS = 10.0  # mlrun's grace period between the forwarded stop and SIGKILL
MARGIN_SECONDS = 2.0
# Each entry point writes `started` once its children run; `sleep 300 &` starts with SIGINT
# ignored (bash does that to background jobs), and so does the grandchild under a nested bash.
MLPROJECT = """
entry_points:
  background:
    command: "sleep 300 & touch started; sleep 300; wait"
  grandchild:
    command: "bash -c 'sleep 300 & wait' & nohup sleep 300 >/dev/null 2>&1 & touch started; wait"
  clean_exit:
    command: "trap 'exit 0' INT TERM; sleep 300 & touch started; while :; do sleep 0.05; done"
"""


def _project(tmp_path: Path) -> Path:
    return write_files(tmp_path / "project", {"MLproject": MLPROJECT})


def _wait_for(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def _start(project: Path, entry: str, wrapper: tuple[str, ...] = ()) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [*wrapper, *mlrun_command("run", ".", "-e", entry, "--no-env")],
        cwd=project,
        env=child_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # as from a terminal of its own: signals come only from us
    )
    _wait_for(lambda: (project / "started").exists() or process.poll() is not None)
    assert process.poll() is None, process.communicate()
    return process


def _finish(process: subprocess.Popen[str], signalled_at: float) -> tuple[int, str, float]:
    try:
        _, stderr = process.communicate(timeout=GRACE_SECONDS * 3)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raise AssertionError("mlrun hung after the signal") from None
    return process.returncode, stderr, time.monotonic() - signalled_at


def _group_left(pgid: int) -> list[int]:
    """The live processes (not zombies) still in the process group, read from /proc."""
    left = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            left.append(int(entry))
    return left


def _the_run(project: Path) -> dict[str, object]:
    [meta] = project.glob("mlruns/0/*/meta.yaml")
    described = run_mlrun("runs", "describe", meta.parent.name, "--json", cwd=project)
    assert described.returncode == 0, described.stderr
    run = json.loads(described.stdout)["run"]
    assert isinstance(run, dict)
    return run


def _assert_stopped_cleanly(
    project: Path, code: int, stderr: str, elapsed: float, expected: int = 130
) -> None:
    assert code == expected, stderr
    assert "Traceback" not in stderr
    assert elapsed < GRACE_SECONDS + MARGIN_SECONDS, f"mlrun took {elapsed:.1f}s to exit"
    run = _the_run(project)
    tags = run["tags"]
    assert isinstance(tags, dict)
    assert _group_left(int(tags["mlrun.runner.pgid"])) == []
    assert run["status"] == "KILLED"
    assert int(tags["mlrun.exit_code"]) > 128

    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=(project / "mlruns").as_uri())
    recorded = client.get_run(str(run["run_id"]))
    assert recorded.info.status == "KILLED"
    assert recorded.data.tags["mlrun.exit_code"] == tags["mlrun.exit_code"]


@pytest.mark.parametrize("entry", ["background", "grandchild", "clean_exit"])
@pytest.mark.parametrize(
    ("signum", "code"),
    [(signal.SIGINT, 130), (signal.SIGTERM, 130), (signal.SIGHUP, 129)],
    ids=["ctrl-c", "sigterm", "sighup"],
)
def test_a_stop_leaves_nothing_of_the_group_and_the_run_killed(
    tmp_path: Path, entry: str, signum: int, code: int
) -> None:
    project = _project(tmp_path)
    process = _start(project, entry)
    os.kill(process.pid, signum)
    _assert_stopped_cleanly(project, *_finish(process, time.monotonic()), expected=code)


@pytest.mark.parametrize("signals", [(signal.SIGINT,), (signal.SIGTERM,), (signal.SIGINT,
                         signal.SIGTERM)], ids=["int", "term", "mixed"])  # fmt: skip
def test_a_storm_of_signals_never_hangs_mlrun(tmp_path: Path, signals: tuple[int, ...]) -> None:
    project = _project(tmp_path)
    process = _start(project, "background")
    signalled_at = time.monotonic()
    for count in range(50):
        if process.poll() is not None:
            break
        os.kill(process.pid, signals[count % len(signals)])
    _assert_stopped_cleanly(project, *_finish(process, signalled_at))


@pytest.mark.skipif(shutil.which("timeout") is None, reason="GNU timeout is not installed")
@pytest.mark.parametrize("name", ["INT", "TERM"])
def test_gnu_timeout_signalling_twice_stops_the_run(tmp_path: Path, name: str) -> None:
    project = _project(tmp_path)
    wrapper = ("timeout", "--preserve-status", "-s", name, "300")
    process = _start(project, "background", wrapper)
    signalled_at = time.monotonic()
    os.kill(process.pid, signal.SIGALRM)  # what timeout takes as "the time is up"
    _assert_stopped_cleanly(project, *_finish(process, signalled_at))
