"""A host process that dies (SIGKILL: no cleanup at all) leaves no entry point running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from mlrun_cli.tracking.tags import PGID_TAG
from tests.conftest import REPO, child_env
from tests.projects.helpers import api_project, recorded, wait_for

HOST = """
import sys, time
from mlrun_cli import projects
submitted = projects.run(sys.argv[1], "gate", parameters={"name": "x"}, env_manager="local",
                         tracking_uri=sys.argv[2], synchronous=False)
print(submitted.run_id, flush=True)
time.sleep(300)
"""


def _group_alive(pgid: int) -> bool:
    """Whether any live process (not a zombie) is still in the process group."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False


def test_sigkilled_host_leaves_no_entry_point_running(tmp_path: Path, store: str) -> None:
    project = api_project(tmp_path)
    host = subprocess.Popen(
        [sys.executable, "-c", HOST, str(project), store],
        cwd=tmp_path, env=child_env(PYTHONPATH=str(REPO)), stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert host.stdout is not None
        run_id = host.stdout.readline().strip()
        wait_for((project / "started-x").exists)
        pgid = int(recorded(store, run_id).tags[PGID_TAG])
        assert _group_alive(pgid)
    finally:
        host.send_signal(signal.SIGKILL)
        host.wait()
    wait_for(lambda: not _group_alive(pgid), timeout=30)


def test_ctrl_c_in_the_host_cancels_what_it_started(tmp_path: Path, store: str) -> None:
    """An uncaught KeyboardInterrupt ends the host; its run ends KILLED, not RUNNING."""
    project = api_project(tmp_path)
    host = subprocess.Popen(
        [sys.executable, "-c", HOST, str(project), store],
        cwd=tmp_path, env=child_env(PYTHONPATH=str(REPO)), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert host.stdout is not None
    run_id = host.stdout.readline().strip()
    wait_for((project / "started-x").exists)
    pgid = int(recorded(store, run_id).tags[PGID_TAG])
    host.send_signal(signal.SIGINT)
    _, stderr = host.communicate(timeout=60)
    assert "KeyboardInterrupt" in stderr
    assert recorded(store, run_id).info.status.name == "KILLED"
    assert not _group_alive(pgid)


SYNCHRONOUS_HOST = """
import sys
from mlrun_cli import projects
try:
    projects.run(sys.argv[1], "gate", parameters={"name": "x"}, env_manager="local",
                 tracking_uri=sys.argv[2])
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""


def test_ctrl_c_during_a_synchronous_run_records_it_killed_then_raises(
    tmp_path: Path, store: str
) -> None:
    project = api_project(tmp_path)
    host = subprocess.Popen(
        [sys.executable, "-c", SYNCHRONOUS_HOST, str(project), store],
        cwd=tmp_path, env=child_env(PYTHONPATH=str(REPO)), stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    wait_for((project / "started-x").exists)
    host.send_signal(signal.SIGINT)
    stdout, _ = host.communicate(timeout=60)
    assert (host.returncode, stdout) == (0, "interrupted\n")
    [meta] = Path(store).glob("0/*/meta.yaml")
    assert recorded(store, meta.parent.name).info.status.name == "KILLED"
