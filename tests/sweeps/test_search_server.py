"""A search recording into a real `mlflow server`: the store is searched a fixed number of
times however many trials run (nothing per trial scans a store that grows with every run)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, run_mlrun
from tests.servers import MlflowServer, recording_proxy

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    data = tmp_path_factory.mktemp("mlflow-server")
    server = MlflowServer(f"sqlite:///{data / 'mlflow.db'}", data).start()
    yield server
    server.stop()


def run_searches(tmp_path: Path, server: MlflowServer, trials: int) -> int:
    """The runs/search requests of a search of `trials` trials."""
    with recording_proxy(server.uri) as (uri, seen):
        done = run_mlrun(
            "sweep", str(REPO / "examples" / "search"), "--no-env", "--json", "--search",
            "random", "--trials", str(trials), "--seed", "3", "--objective", "loss",
            "--minimize", "-P", "lr=loguniform(1e-4,1e-1)",
            cwd=tmp_path, timeout=300, MLFLOW_TRACKING_URI=uri,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["search"]["trials"]) == trials
    return sum(request.path.split("?")[0].endswith("/runs/search") for request in seen)


def test_the_store_is_searched_as_often_for_six_trials_as_for_two(
    tmp_path: Path, server: MlflowServer
) -> None:
    assert run_searches(tmp_path, server, 6) == run_searches(tmp_path, server, 2)
