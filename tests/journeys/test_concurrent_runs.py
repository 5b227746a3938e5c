"""Four `mlrun run` processes at once whose entry points log through MLflow's own fluent API,
while a user keeps listing and describing them: every listing is whole (no traceback, no damaged
run), all four end FINISHED with every metric point, and MLflow's client reads them all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import child_env, mlrun_command, run_mlrun, write_files

pytestmark = [pytest.mark.journey, pytest.mark.slow]

RUNS = 4
STEPS = 25
PROJECT = {
    "MLproject": """name: concurrent
entry_points:
  main:
    parameters:
      k: {type: float, default: 1}
      release: {type: string, default: release}
    command: "python log.py {k} {release}"
""",
    "log.py": f"""import os, sys, time
import mlflow

k = float(sys.argv[1])
release = sys.argv[2]
mlflow.log_param("k_seen", k)
mlflow.set_tag("phase", "waiting")
for step in range({STEPS}):
    mlflow.log_metric("loss", k / (step + 1), step=step)
deadline = time.monotonic() + 60
while not os.path.exists(release) and time.monotonic() < deadline:
    time.sleep(0.05)  # until the test has seen every run RUNNING
for step in range({STEPS}, {2 * STEPS}):
    mlflow.log_metric("loss", k / (step + 1), step=step)
mlflow.log_metrics({{"final": k * 10, "steps": {2 * STEPS}}})
mlflow.set_tag("phase", "done")
print("logged", k)
""",
}
DAMAGE = ("Traceback", "unreadable", "skipped", "damaged", "Error")


def _environment(project: Path) -> dict[str, str]:
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return child_env(PATH=path, MLRUN_CACHE_DIR=str(project / ".cache"))


def _run_args(k: int, release: Path) -> list[str]:
    params = ["-P", f"k={k}", "-P", f"release={release}"]
    return ["run", ".", "--no-env", *params, "--run-name", f"run-{k}", "--json"]


def _look(project: Path) -> dict[str, str]:
    """One `runs list` (text and JSON) and a `runs describe` of each run: run id -> status."""
    env = _environment(project)
    listed = run_mlrun("runs", "list", cwd=project, **env)
    as_json = run_mlrun("runs", "list", "--json", cwd=project, **env)
    for done in (listed, as_json):
        assert done.returncode == 0, done.stderr
        assert not any(word in done.stdout + done.stderr for word in DAMAGE), done.stderr
    statuses = {run["run_id"]: run["status"] for run in json.loads(as_json.stdout)["runs"]}
    for run_id in statuses:
        described = run_mlrun("runs", "describe", run_id, cwd=project, **env)
        assert described.returncode == 0, described.stderr
        assert f"run_id: {run_id}" in described.stdout
        assert not any(word in described.stdout + described.stderr for word in DAMAGE)
    return statuses


def test_four_concurrent_mlflow_runs_listed_and_described_while_they_run(
    tmp_path: Path,
) -> None:
    project = write_files(tmp_path / "project", PROJECT)
    release = tmp_path / "release"
    processes = [
        subprocess.Popen(
            mlrun_command(*_run_args(k, release)),
            cwd=project,
            env=_environment(project),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(1, RUNS + 1)
    ]
    try:
        deadline = time.monotonic() + 90
        seen_running: set[str] = set()
        while len(seen_running) < RUNS and time.monotonic() < deadline:
            seen_running |= {i for i, s in _look(project).items() if s == "RUNNING"}
        assert len(seen_running) == RUNS, "the four runs were never all seen RUNNING"
        release.write_text("go")
        while any(p.poll() is None for p in processes):
            _look(project)
        outputs = [p.communicate(timeout=60) for p in processes]
    finally:
        release.write_text("go")
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    for process, (stdout, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr
        assert "Traceback" not in stderr
        assert json.loads(stdout)["run"]["status"] == "FINISHED"
    assert set(_look(project).values()) == {"FINISHED"}

    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=(project / "mlruns").as_uri())
    runs = client.search_runs(["0"], max_results=100)
    assert sorted(r.info.run_name for r in runs) == [f"run-{k}" for k in range(1, RUNS + 1)]
    for run in runs:
        k = float(run.data.params["k"])
        assert run.info.status == "FINISHED"
        assert run.info.run_id in seen_running
        assert run.data.params["k_seen"] == str(k)
        assert run.data.tags["phase"] == "done"
        assert run.data.metrics == {"loss": k / (2 * STEPS), "final": k * 10, "steps": 2 * STEPS}
        history = client.get_metric_history(run.info.run_id, "loss")
        assert sorted(m.step for m in history) == list(range(2 * STEPS))
