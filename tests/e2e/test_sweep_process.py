"""`mlrun sweep` as a real process: Ctrl-C ends every running child and the parent, KILLED;
children that write one output path take turns (a Slurm array, one task at a time), and each
records the digest of what it wrote itself."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from mlrun_cli.tracking.file_store import FileStore
from tests.conftest import child_env, mlrun_command, run_mlrun, write_files

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


WRITER = {
    "MLproject": """
name: writer
entry_points:
  main:
    parameters:
      n: {type: int, default: 0}
      out: {type: path, default: models/model.txt, role: output}
    command: "python write.py {n} {out}"
""",
    # Writes its value into `out`, then stays until a sibling started too (the children
    # overlap) or the sweep announced that they run one at a time (the test's `serialised`).
    "write.py": """import os, sys, time
from pathlib import Path
n, out, events = sys.argv[1], Path(sys.argv[2]), Path(os.environ["SWEEP_EVENTS"])
out.parent.mkdir(parents=True, exist_ok=True)
out.write_text(f"model of n={n}\\n")
(events / f"started-{n}").touch()
deadline = time.monotonic() + 60
while not any(p.name != f"started-{n}" for p in events.iterdir()):
    if time.monotonic() > deadline:
        sys.exit("no sibling started, and the sweep announced no serialisation")
    time.sleep(0.02)
print("wrote", n)
""",
    "models/README": "what the runs write\n",
}
SHARED = "children share output"


def _sweep_with_events(tmp_path: Path, *params: str) -> tuple[int, str]:
    """A -j 2 sweep of the writer; `serialised` appears when the sweep says the children run
    one at a time. The exit code and everything it wrote to stderr."""
    project = write_files(tmp_path / "project", WRITER)
    events = tmp_path / "events"
    events.mkdir()
    process = subprocess.Popen(
        mlrun_command("sweep", ".", "--no-env", "-j", "2", *params),
        cwd=project,
        env=child_env(SWEEP_EVENTS=str(events)),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    lines = []
    for line in process.stderr:
        lines.append(line)
        if SHARED in line:
            (events / "serialised").touch()
    return process.wait(timeout=60), "".join(lines)


def _children(project: Path) -> list:
    runs = FileStore(project / "mlruns").stored_runs(["0"])
    return [r for r in runs if "mlflow.parentRunId" in r.tags]


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_children_sharing_an_output_each_record_their_own(tmp_path: Path) -> None:
    code, err = _sweep_with_events(tmp_path, "-P", "n=1,2,3")
    assert code == 0, err
    children = _children(tmp_path / "project")
    assert len(children) == 3
    for child in children:
        own = _sha(f"model of n={child.params['n']}\n")
        assert child.tags["mlrun.output.out.digest"] == own, f"n={child.params['n']}"
    message = (
        "mlrun: children share output out (models/model.txt); they run one at a time so each "
        "records its own output"
    )
    assert err.count(message) == 1, err


def test_children_with_distinct_outputs_still_run_at_once(tmp_path: Path) -> None:
    outputs = "out=models/1.txt,models/2.txt"
    code, err = _sweep_with_events(tmp_path, "-P", "n=1,2", "-P", outputs, "--zip")
    assert code == 0, err  # each child ended only once its sibling had started: they overlapped
    assert SHARED not in err
    for child in _children(tmp_path / "project"):
        own = _sha(f"model of n={child.params['n']}\n")
        assert child.tags["mlrun.output.out.digest"] == own


ECHOER = {
    "MLproject": """
name: echoer
entry_points:
  main:
    parameters:
      n: {type: int, default: 0}
      out: {type: path, default: models/model.txt, role: output}
    command: "echo {n} > {out}"
""",
    "models/README": "what the runs write\n",
}


@pytest.mark.slow
@pytest.mark.slurm
@pytest.mark.parametrize(
    ("params", "throttle", "shared"),
    [
        (("-P", "n=1,2,3"), "%1", True),
        (("-P", "n=1,2,3", "-P", "out=models/1.txt,models/2.txt,models/3.txt", "--zip"), "%2",
         False),
    ],
)  # fmt: skip
def test_a_slurm_array_whose_children_share_an_output_runs_one_task_at_a_time(
    tmp_path: Path, slurm_conf: str, params: tuple[str, ...], throttle: str, shared: bool
) -> None:
    project = write_files(tmp_path / "project", ECHOER)
    config = json.dumps({"partition": "debug", "staging_dir": str(tmp_path / "staging")})
    done = run_mlrun(
        "sweep", ".", "--no-env", "--backend", "slurm", "--backend-config", config, "-j", "2",
        *params, cwd=project, timeout=300, SLURM_CONF=slurm_conf,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    [script] = (tmp_path / "staging").glob("*/job.sbatch")
    assert f"#SBATCH --array=0-2{throttle}\n" in script.read_text()
    message = "mlrun: children share output out (models/model.txt); they run one at a time"
    assert done.stderr.count(message) == (1 if shared else 0), done.stderr
