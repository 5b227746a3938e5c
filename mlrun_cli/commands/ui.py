"""`mlrun ui`: MLflow's own UI on the store, when MLflow's server is installed."""

from __future__ import annotations

import sys

from mlrun_cli.core.processes import run_captured
from mlrun_cli.core.settings import Settings
from mlrun_cli.errors import MlrunError


class UiUnavailableError(MlrunError):
    exit_code = 2


def ui_command(settings: Settings, host: str, port: int) -> tuple[tuple[str, ...], dict[str, str]]:
    """The command that serves the store, after checking that MLflow's server can start."""
    probe = run_captured((sys.executable, "-c", "import mlflow.server"), timeout=120)
    if probe.returncode != 0:
        raise UiUnavailableError(
            "mlrun ui needs MLflow's tracking server, which is not installed here "
            "(mlflow-skinny has no UI): pip install mlflow"
        )
    argv = (
        sys.executable, "-m", "mlflow", "ui",
        "--backend-store-uri", settings.store_root.as_uri(),
        "--host", host, "--port", str(port),
    )  # fmt: skip
    env = {**settings.environ, "MLFLOW_ALLOW_FILE_STORE": "true"}
    return argv, env
