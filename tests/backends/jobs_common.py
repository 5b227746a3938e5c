"""What the Slurm and Ray tests share: projects, and reading a run back from the store."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from mlrun_cli.tracking.file_store import FileStore
from mlrun_cli.tracking.store import RecordedRun
from mlrun_cli.tracking.stored_run import StoredRun
from tests.backends.engines import reach_time_limit_now, wait_for
from tests.conftest import EXAMPLE, write_files

SLEEPER = {
    "MLproject": (
        "name: sleeper\n"
        "entry_points:\n"
        "  main:\n"
        "    parameters: {code: {type: int, default: 0}, seconds: {type: int, default: 0}}\n"
        '    command: "echo started; sleep {seconds}; echo done >&2; exit {code}"\n'
    )
}


def example_copy(tmp_path: Path) -> Path:
    project = tmp_path / "example_project"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("*.joblib"))
    return project


def sleeper(tmp_path: Path) -> Path:
    return write_files(tmp_path / "sleeper", SLEEPER)


def stored_run(tmp_path: Path, run_id: str) -> RecordedRun:
    return FileStore(tmp_path / "mlruns").get_run(run_id)


def started_on_node(run: StoredRun) -> bool:
    """RUNNING as the node's mlrun claimed it (its runner tags come first). The submitter
    creates the run RUNNING and makes it SCHEDULED at once: that RUNNING is not the node's."""
    return run.info.status.name == "RUNNING" and "mlrun.runner.pid" in run.tags


def stored_runs(store: FileStore) -> list[StoredRun]:
    return store.stored_runs(["0"]) if (store.root / "0").is_dir() else []


def time_out_once_started(tmp_path: Path, conf: str, jobs: int) -> None:
    """Once `jobs` Slurm runs of this store run their entry points on the node, have each job
    reach its one-minute time limit now (see `reach_time_limit_now`)."""
    store = FileStore(tmp_path / "mlruns")

    def all_started() -> list[StoredRun]:
        runs = [run for run in stored_runs(store) if started_on_node(run)]
        return runs if len(runs) >= jobs else []

    for run in wait_for(all_started, 120, f"{jobs} runs to start on the node"):
        reach_time_limit_now(run.tags["mlrun.slurm.job_id"], conf)


def run_json(stdout: str) -> dict[str, object]:
    document: dict[str, object] = json.loads(stdout)["run"]
    return document


def assert_finished_train(tmp_path: Path, run_id: str, backend: str, project: Path) -> None:
    """FINISHED, with params, the entry point's metrics, its logs and provenance."""
    run = stored_run(tmp_path, run_id)
    assert run.info.status.name == "FINISHED"
    assert run.params["alpha"] == "0.01"
    assert "best_cv_score" in run.metrics
    assert run.tags["mlrun.backend"] == backend
    assert run.tags[f"mlrun.{backend}.job_id"]
    artifacts = FileStore(tmp_path / "mlruns").artifact_dir(run.info)
    assert "best cv score" in (artifacts / "logs" / "stdout.log").read_text()
    record = json.loads((artifacts / "provenance" / "run.json").read_text())
    assert record["source"]["directory"] == str(project)
    assert record["run"]["status"] == "FINISHED"
    assert record["environment"]["manager"] == "local"
