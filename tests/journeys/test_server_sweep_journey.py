"""A sweep against a real `mlflow server` that proxies artifacts, whose server goes away in the
middle: the sweep ends with one clear error and exit 4, `mlrun sync` with the server back
leaves no run RUNNING, MLflow's client lists every run's files on the server, and `--reuse` of
the same sweep reuses what finished by asking the server for exactly those runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import child_env, mlrun_command, run_mlrun, write_files
from tests.servers import MlflowServer, recording_proxy

pytestmark = [pytest.mark.journey, pytest.mark.slow]

PYTHON = f"{sys.version_info[0]}.{sys.version_info[1]}"
PROJECT = {
    "MLproject": """
entry_points:
  main:
    parameters:
      acc: float
    command: "python score.py {acc}"
""",
    "python_env.yaml": f"python: '{PYTHON}'\n",
    "score.py": """
import os, pathlib, sys, time
import mlrun_log as ml
acc = sys.argv[1]
ml.log_metric("acc", float(acc))
print("scored", acc)
hold = pathlib.Path(os.environ["HOLD_DIR"])  # outside the project: its content is in the run key
if acc == "0.2" and not (hold / "go").exists():  # held until the test has stopped the server
    (hold / "started").touch()
    deadline = time.monotonic() + 300
    while not (hold / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
""",
}
LIST_FILES = """
import json, sys
from mlflow import MlflowClient
client = MlflowClient(sys.argv[1])
def files(run_id, path=None):
    for entry in client.list_artifacts(run_id, path):
        yield from files(run_id, entry.path) if entry.is_dir else [entry.path]
runs = client.search_runs([client.get_experiment_by_name(sys.argv[2]).experiment_id])
print(json.dumps({r.info.run_id: [r.info.status, r.data.tags.get("mlflow.parentRunId"),
                                  sorted(files(r.info.run_id))] for r in runs}))
"""


def environment(tmp_path: Path) -> dict[str, str]:
    return {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "MLRUN_CACHE_DIR": str(tmp_path / "cache"),
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
        "HOLD_DIR": str(tmp_path),
    }


def server_has_metric(uri: str, experiment: str, acc: str) -> bool:
    """Whether the server already holds the held child's metric (sent by mlrun_log)."""
    request = urllib.request.Request(
        f"{uri}/api/2.0/mlflow/experiments/get-by-name?experiment_name={experiment}"
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        experiment_id = json.load(answer)["experiment"]["experiment_id"]
    body = json.dumps(
        {"experiment_ids": [experiment_id], "filter": f"metrics.acc = {acc}", "max_results": 5}
    ).encode()
    search = urllib.request.Request(
        f"{uri}/api/2.0/mlflow/runs/search",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(search, timeout=30) as answer:
        return bool(json.load(answer).get("runs"))


def wait_until(condition, what: str, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen in time"
        time.sleep(0.1)


def mlflow_lists(uri: str, experiment: str) -> dict[str, list[object]]:
    done = subprocess.run(
        [sys.executable, "-c", LIST_FILES, uri, experiment],
        capture_output=True, text=True, env=child_env(), check=True, timeout=300,
    )  # fmt: skip
    listed: dict[str, list[object]] = json.loads(done.stdout.splitlines()[-1])
    return listed


def test_a_sweep_survives_its_server_going_away_then_syncs_and_reuses(tmp_path: Path) -> None:
    env = environment(tmp_path)
    server = MlflowServer(f"sqlite:///{tmp_path / 'server' / 'mlflow.db'}", tmp_path / "server")
    server.start()
    project = write_files(tmp_path / "project", PROJECT)
    experiment = "swept"
    sweep = ("sweep", str(project), "-P", "acc=0.1,0.2,0.3", "--env-manager", "uv",
             "--experiment-name", experiment)  # fmt: skip
    try:
        child = subprocess.Popen(
            mlrun_command(*sweep, "--tracking-uri", server.uri), cwd=tmp_path,
            env=child_env(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        wait_until(lambda: (tmp_path / "started").exists(), "the second child's start")
        wait_until(lambda: server_has_metric(server.uri, experiment, "0.2"), "its metric")
        server.stop()
        (tmp_path / "go").touch()
        _, err = child.communicate(timeout=600)

        # The sweep says what happened, once, and exits with the store's code.
        assert child.returncode == 4, err
        assert "Traceback" not in err
        last = err.splitlines()[-1]
        assert last.startswith("mlrun: error: sweep "), err
        assert "ended FAILED (2 of 3 runs FINISHED), but its runs cannot be listed" in last
        assert last.endswith(f"tracking server {server.uri} is unreachable (Connection refused)")
        assert "run `mlrun sync` to send them" in err

        server.start()
        synced = run_mlrun("sync", cwd=tmp_path, **env)
        assert synced.returncode == 0, synced.stderr
        assert synced.stdout.count(f": sent to {server.uri}\n") == 2, synced.stdout

        # Nothing RUNNING; every run's files are on the server, as MLflow's client lists them.
        runs = mlflow_lists(server.uri, experiment)
        parents = [run_id for run_id, (_, parent, _) in runs.items() if parent is None]
        assert len(parents) == 1 and len(runs) == 3  # the third point never reached the server
        assert runs[parents[0]][0] == "FAILED"
        assert runs[parents[0]][2] == ["environment/build.log"]
        children = [value for run_id, value in runs.items() if run_id not in parents]
        assert sorted(str(status) for status, _, _ in children) == ["FINISHED", "FINISHED"]
        for _, _, files in children:
            assert {"logs/stdout.log", "logs/stderr.log", "provenance/run.json"} <= set(files)
        assert not any((tmp_path / "cache").rglob("stdout.log")), "a log stayed in staging"

        # The same sweep again: the two finished points are reused, found by the server's filter.
        with recording_proxy(server.uri) as (uri, seen):
            again = run_mlrun(*sweep, "--reuse", "--json", "--tracking-uri", uri, cwd=tmp_path,
                              timeout=600, **env)  # fmt: skip
        assert again.returncode == 0, again.stderr
        rows = {r["params"]["acc"]: r for r in json.loads(again.stdout)["sweep"]["children"]}
        assert rows["0.1"]["reused_from"] and rows["0.2"]["reused_from"]
        assert rows["0.3"]["status"] == "FINISHED" and rows["0.3"]["reused_from"] is None
        filters = [r.payload().get("filter") for r in seen if r.path.endswith("/runs/search")]
        assert filters and all(filters), filters
    finally:
        server.stop()
