"""Helpers for tests that need a file store full of runs, and MLflow's own answers about it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import RUNTIME

BUILD_STORE = """
import random, sys
sys.path.insert(0, sys.argv[2])
import mlrun_log as ml
random.seed(7)
count = int(sys.argv[1])
for i in range(count):
    ml.start_run(run_name=f"run-{i % 7}", experiment_id="0")
    if i % 10 != 3:
        ml.log_metric("m", random.random(), timestamp=1000 + i)
    ml.log_metric("loss", random.choice([0.5, 0.25, 0.125]), step=1, timestamp=1000 + i)
    ml.log_metric("loss", 9.0, step=0, timestamp=2000 + i)  # an older step: not the latest
    if i % 4:
        ml.log_param("lr", random.choice(["0.1", "0.01", "1e-3"]))
    ml.log_param("model", random.choice(["cnn", "CNN-large", "rnn"]))
    if i % 5 == 0:
        ml.set_tag("team", random.choice(["vision", "nlp"]))
    ml.end_run(random.choice(["FINISHED", "FINISHED", "FAILED", "KILLED"]))
"""


def build_store(root: Path, count: int) -> None:
    subprocess.run(
        [sys.executable, "-c", BUILD_STORE, str(count), str(RUNTIME)],
        cwd=root,
        check=True,
        env={"MLFLOW_TRACKING_URI": (root / "mlruns").as_uri(), "PATH": ""},
    )


MLFLOW_SEARCH = """
import json, sys, mlflow
mlflow.set_tracking_uri(sys.argv[1])
results = []
for filter_string, order_by, max_results in json.loads(sys.argv[2]):
    runs = mlflow.search_runs(["0"], filter_string, order_by=order_by, max_results=max_results,
                              output_format="list")
    results.append([r.info.run_id for r in runs])
print(json.dumps(results))
"""


def mlflow_ids(root: Path, queries: list[tuple[str, list[str], int]]) -> list[list[str]]:
    """MLflow's answers to all the queries, from one process (its import takes seconds)."""
    done = subprocess.run(
        [sys.executable, "-c", MLFLOW_SEARCH, (root / "mlruns").as_uri(), json.dumps(queries)],
        capture_output=True,
        text=True,
        env={"MLFLOW_ALLOW_FILE_STORE": "true", "PATH": ""},
        check=True,
    )
    return json.loads(done.stdout)
