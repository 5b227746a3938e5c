from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.backends.test_docker import docker_host  # noqa: F401 - a shared fixture
from tests.servers import MlflowServer


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh file store, and a working directory and environment free of the user's."""
    monkeypatch.chdir(tmp_path)
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID",
                 "MLFLOW_RUN_ID", "MLRUN_REUSE"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLRUN_ENV_ROOT", str(tmp_path / "envs"))
    return str(tmp_path / "mlruns")


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """One real `mlflow server` (sqlite, --serve-artifacts) for the API's tests."""
    pytest.importorskip("mlflow")
    data = tmp_path_factory.mktemp("api-mlflow-server")
    server = MlflowServer(f"sqlite:///{data / 'mlflow.db'}", data).start()
    yield server
    server.stop()
