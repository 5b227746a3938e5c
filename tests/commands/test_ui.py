"""`mlrun ui`: MLflow's server on the store, started lean, or a one-line refusal."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from mlrun_cli.commands.ui import UiUnavailableError, ui_command
from mlrun_cli.core.settings import Settings
from tests.conftest import child_env, mlrun_command


def installed(tmp_path: Path, *names: str) -> list[str]:
    """A folder where exactly these distributions are installed (their metadata)."""
    site = tmp_path / "site"
    for name in names:
        info = site / f"{name.replace('-', '_')}-3.0.0.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 3.0.0\n")
    return [str(site)]


def test_only_mlflow_skinny_installed_is_refused_with_what_to_install(tmp_path: Path) -> None:
    settings = Settings.resolve(cwd=tmp_path, environ={})
    with pytest.raises(UiUnavailableError) as raised:
        ui_command(settings, "127.0.0.1", 5000, path=installed(tmp_path, "mlflow-skinny"))
    assert raised.value.message == (
        "mlrun ui needs MLflow's tracking server, which is not installed here "
        "(mlflow-skinny has no UI): pip install mlflow"
    )
    assert raised.value.exit_code == 2


def test_the_server_runs_one_worker_without_the_job_runner_unless_the_user_asks(
    tmp_path: Path,
) -> None:
    path = installed(tmp_path, "mlflow-skinny", "mlflow")
    settings = Settings.resolve(cwd=tmp_path, environ={"MLFLOW_ALLOW_FILE_STORE": "false"})
    argv, env = ui_command(settings, "127.0.0.1", 5000, path=path)
    assert argv[1:4] == ("-m", "mlflow", "server")
    assert argv[argv.index("--workers") + 1] == "1"
    assert argv[argv.index("--backend-store-uri") + 1] == (tmp_path / "mlruns").as_uri()
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert env["MLFLOW_ALLOW_FILE_STORE"] == "true"  # mlrun's store is a file store
    asked = Settings.resolve(cwd=tmp_path, environ={"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "true"})
    assert ui_command(asked, "127.0.0.1", 5000, path=path)[1][
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION"
    ] == ("true")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
def test_mlrun_ui_serves_the_store_in_mlflows_ui(tmp_path: Path) -> None:
    recorded = subprocess.run(
        mlrun_command("experiments", "create", "-n", "seen-in-the-ui"),
        cwd=tmp_path,
        env=child_env(),
        capture_output=True,
        text=True,
    )
    assert recorded.returncode == 0, recorded.stderr
    port = free_port()
    server = subprocess.Popen(
        mlrun_command("ui", "--port", str(port)),
        cwd=tmp_path,
        env=child_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        page = experiments = None
        deadline = time.monotonic() + 240
        while page is None and time.monotonic() < deadline:
            assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as answer:
                    page = answer.read().decode()
            except OSError:
                time.sleep(0.2)
        assert page is not None and "<html" in page.lower()
        search = urllib.request.Request(
            f"http://127.0.0.1:{port}/ajax-api/2.0/mlflow/experiments/search",
            data=json.dumps({"max_results": 10}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(search, timeout=30) as answer:
            experiments = json.loads(answer.read())["experiments"]
        assert "seen-in-the-ui" in {e["name"] for e in experiments}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
