"""`mlrun sweep` as a real process: Ctrl-C ends every running child and the parent, KILLED."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from mlrun_cli.tracking.file_store import FileStore
from tests.conftest import child_env, mlrun_command, write_files

SLEEPER = {
    "MLproject": """
name: sleeper
entry_points:
  main:
    parameters:
      n: {type: int, default: 0}
    command: "echo started {n}; sleep 60"
""",
}


def started_children(store: FileStore) -> list:
    if not (store.root / "0").is_dir():
        return []
    runs = store.stored_runs(["0"])
    return [
        r
        for r in runs
        if "mlflow.parentRunId" in r.tags
        and (store.artifact_dir(r.info) / "logs" / "stdout.log").is_file()
        and "started" in (store.artifact_dir(r.info) / "logs" / "stdout.log").read_text()
    ]


def test_ctrl_c_kills_the_running_children_and_the_parent(tmp_path: Path) -> None:
    write_files(tmp_path / "project", SLEEPER)
    process = subprocess.Popen(
        mlrun_command("sweep", "project", "--no-env", "-P", "n=1,2,3", "-j", "2"),
        cwd=tmp_path,
        env=child_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    store = FileStore(tmp_path / "mlruns")
    deadline = time.monotonic() + 60
    while len(started_children(store)) < 2:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the children never started"
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    runs = store.stored_runs(["0"])
    parents = [r for r in runs if "mlrun.sweep" in r.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.tags]
    assert [p.info.status.name for p in parents] == ["KILLED"]
    assert sorted(c.info.status.name for c in children) == ["KILLED", "KILLED"]  # 3rd never began
    assert b"[1] started 1" in out and b"[2] started 2" in out
