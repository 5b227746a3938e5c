"""`mlrun ui`: MLflow's own UI on the store, when MLflow's server is installed.

mlrun starts `mlflow server` with one worker and without MLflow's job runner
(MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false): the runner and its queue consumers serve only
MLflow's GenAI jobs, and with MLflow's defaults they more than double the time until the page
answers. Whether the server is installed is read from the installed distributions' metadata,
not by importing `mlflow.server` (an interpreter start that costs as much as the server's own).
A MLFLOW_SERVER_ENABLE_JOB_EXECUTION the user set wins over mlrun's choice.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, distribution
from importlib.metadata import distributions as installed

from mlrun_cli.core.settings import Settings
from mlrun_cli.errors import MlrunError


class UiUnavailableError(MlrunError):
    exit_code = 2


def ui_command(
    settings: Settings, host: str, port: int, workers: int = 1, path: Sequence[str] | None = None
) -> tuple[tuple[str, ...], dict[str, str]]:
    """The command that serves the store; `path`: where to look for installed packages (this
    interpreter's sys.path by default)."""
    if not _server_installed(path):
        raise UiUnavailableError(
            "mlrun ui needs MLflow's tracking server, which is not installed here "
            "(mlflow-skinny has no UI): pip install mlflow"
        )
    argv = (
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", settings.store_root.as_uri(),
        "--host", host, "--port", str(port), "--workers", str(workers),
    )  # fmt: skip
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **settings.environ}
    return argv, {**env, "MLFLOW_ALLOW_FILE_STORE": "true"}  # mlrun's store is a file store


def _server_installed(path: Sequence[str] | None) -> bool:
    """The full `mlflow` distribution (not only mlflow-skinny, which has no server)."""
    if path is None:
        try:
            distribution("mlflow")
        except PackageNotFoundError:
            return False
        return True
    return any(d.metadata["Name"] == "mlflow" for d in installed(path=list(path)))
