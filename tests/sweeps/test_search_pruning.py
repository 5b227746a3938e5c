"""`mlrun sweep --search --prune` as a real process: the pruner reads each running trial's
objective by step from the store and stops one that falls behind; that child ends KILLED,
tagged pruned, told PRUNED, and nothing of its process group is left."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlrun_cli.core.settings import Settings
from mlrun_cli.tracking.store import open_store
from tests.conftest import run_mlrun, write_files

LEARNER = {
    # A trial logs its loss at steps 0..4; a trial with x above 0.9 is slow: after logging
    # step 3 it starts a helper process and waits a minute (unless it is stopped).
    "MLproject": """
name: learner
entry_points:
  main:
    parameters:
      x: float
      logger: {type: string, default: mlrun_log}
    command: "python learn.py {x} {logger}"
""",
    "learn.py": """import os, subprocess, sys, time
from pathlib import Path
x, logger = float(sys.argv[1]), sys.argv[2]
if logger == "mlflow":
    import mlflow
    mlflow.start_run()
    log_metric = mlflow.log_metric
else:
    import mlrun_log
    log_metric = mlrun_log.log_metric
for step in range(5):
    log_metric("loss", (x - 0.25) ** 2 + 1 / (step + 1), step=step)
    if x > 0.9 and step == 3:
        helper = subprocess.Popen(["sleep", "60"])
        Path(os.environ["PIDS"]).write_text(f"{os.getpid()} {helper.pid}")
        time.sleep(60)
""",
}


def _live(pid: int) -> tuple[str, int] | None:
    """(state, process group) of a process that has not ended; a zombie (ended, not reaped
    yet by its new parent) counts as ended."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None if fields[0] == "Z" else (fields[0], int(fields[2]))


def _group_members(pgid: int) -> list[int]:
    pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]
    return [pid for pid in pids if (live := _live(pid)) is not None and live[1] == pgid]


@pytest.mark.parametrize(
    ("pruner", "logger"),
    [
        ("median", "mlrun_log"),
        ("hyperband", "mlrun_log"),
    ],
)
def test_a_trial_that_falls_behind_is_pruned_killed_and_its_group_gone(
    tmp_path: Path, pruner: str, logger: str
) -> None:
    prune_a_slow_trial(tmp_path, pruner, logger)


@pytest.mark.slow  # MLflow's database store creates its schema; mlflow imports in seconds
def test_pruning_reads_the_trials_from_a_database_store(tmp_path: Path) -> None:
    # mlrun_log writes to file stores and servers only: these trials log through mlflow
    prune_a_slow_trial(tmp_path, "median", "mlflow", f"sqlite:///{tmp_path / 'mlflow.db'}")


def prune_a_slow_trial(
    tmp_path: Path, pruner: str, logger: str, tracking_uri: str | None = None
) -> None:
    """Five good trials, then a slow bad one that the pruner must stop."""
    project = write_files(tmp_path / "project", LEARNER)
    good = [f"--enqueue=x={x}" for x in ("0.2", "0.3", "0.25", "0.1", "0.4")]
    done = run_mlrun(
        "sweep", str(project), "--no-env", "--json", "--search", "tpe", "--trials", "6",
        "--objective", "loss", "--minimize", "--prune", pruner, "-P", "x=uniform(0,1)",
        *good, "--enqueue", "x=0.95", "-P", f"logger={logger}",
        *(("--tracking-uri", tracking_uri) if tracking_uri else ()),
        cwd=tmp_path, timeout=50, PIDS=str(tmp_path / "pids"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    trials = json.loads(done.stdout)["search"]["trials"]
    states = [t["state"] for t in trials]
    if pruner == "median":  # it prunes nothing until 5 trials completed
        assert states == ["COMPLETE"] * 5 + ["PRUNED"]
    else:  # Hyperband may also prune a good trial it happens to see at a rung, running
        assert states[5] == "PRUNED" and set(states[:5]) <= {"COMPLETE", "PRUNED"}
    pruned = trials[5]
    assert pruned["status"] == "KILLED" and pruned["params"] == {"x": "0.95"}
    assert pruned["duration_seconds"] < 30  # not the minute it would have taken
    assert f"[6] x=0.95 logger={logger}: pruned at step" in done.stderr

    settings = Settings.resolve(tracking_uri or str(tmp_path / "mlruns"))
    child = open_store(settings).get_run(pruned["run_id"])
    assert child.tags["mlrun.search.pruned"] == "true"
    assert child.tags["mlrun.search.state"] == "PRUNED"
    entry_pid, helper_pid = map(int, (tmp_path / "pids").read_text().split())
    assert _live(entry_pid) is None and _live(helper_pid) is None
    assert _group_members(int(child.tags["mlrun.runner.pgid"])) == []
