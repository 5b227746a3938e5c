"""A user trains against a tracking server that goes away: during the first run it comes back
before the end; during the second it stays away past the end. The user runs `mlrun sync` (twice,
to be sure), lists the runs, and MLflow's own client reads every point of both runs exactly once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import child_env, mlrun_command, run_mlrun, write_files
from tests.servers import MlflowServer
from tests.tcp_proxy import TcpProxy
from tests.tracking.test_mlrun_log_rest import LOOP_PROJECT, loss_steps, mlflow_sees, wait_for_lines

pytestmark = [pytest.mark.journey, pytest.mark.slow]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[MlflowServer]:
    running = MlflowServer(f"sqlite:///{tmp_path / 'server' / 'mlflow.db'}", tmp_path / "server")
    running.start()
    yield running
    running.stop()


def _env(home: Path) -> dict[str, str]:
    return {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "MLRUN_CACHE_DIR": str(home / "cache"),
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    }


def _train(home: Path, project: Path, uri: str, progress: Path) -> subprocess.Popen[str]:
    argv = mlrun_command(
        "run", str(project), "--no-env", "--json", "--tracking-uri", uri,
        "--experiment-name", "outage", "-P", f"progress={progress}",
    )  # fmt: skip
    return subprocess.Popen(
        argv, cwd=home, env=child_env(**_env(home)), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def _mlrun(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = run_mlrun(*args, cwd=home, timeout=300, **_env(home))
    assert "Traceback" not in done.stderr
    return done


def test_a_server_that_goes_away_loses_nothing(tmp_path: Path, server: MlflowServer) -> None:
    home = tmp_path / "home"
    home.mkdir()
    project = write_files(tmp_path / "project", LOOP_PROJECT)
    with TcpProxy(server.port) as proxy:
        created = _mlrun(home, "experiments", "create", "--experiment-name", "outage",
                         "--tracking-uri", proxy.uri)  # fmt: skip
        assert created.returncode == 0, created.stderr

        first = _train(home, project, proxy.uri, tmp_path / "first")
        wait_for_lines(tmp_path / "first", 15, first)
        proxy.cut()
        wait_for_lines(tmp_path / "first", 45, first)
        proxy.restore()
        out, err = first.communicate(timeout=300)
        assert first.returncode == 0, err
        assert "mlrun sync" not in err
        first_id = json.loads(out)["run"]["run_id"]

        second = _train(home, project, proxy.uri, tmp_path / "second")
        wait_for_lines(tmp_path / "second", 30, second)
        proxy.cut()
        out, err = second.communicate(timeout=300)
        assert second.returncode == 0, err
        assert "run `mlrun sync` to send them" in err
        second_id = json.loads(out)["run"]["run_id"]

        stranded = _mlrun(home, "sync")
        assert stranded.returncode == 4
        assert f"run {second_id}" in stranded.stderr and "still waiting" in stranded.stderr

        proxy.restore()
        synced = _mlrun(home, "sync")
        assert (synced.returncode, synced.stdout) == (0, f"run {second_id}: sent to {proxy.uri}\n")
        again = _mlrun(home, "sync")
        assert (again.returncode, again.stdout) == (0, "nothing to send: the outbox is empty\n")

        listed = _mlrun(home, "runs", "list", "--experiment-name", "outage",
                        "--tracking-uri", proxy.uri)  # fmt: skip
        assert listed.returncode == 0, listed.stderr
        assert first_id[:8] in listed.stdout and second_id[:8] in listed.stdout

    for run_id in (first_id, second_id):
        seen = mlflow_sees(server.uri, run_id)
        assert seen["status"] == "FINISHED"
        assert loss_steps(seen) == list(range(60)), run_id
        assert seen["params"]["points"] == "60"  # type: ignore[index]
        assert seen["tags"]["done"] == "yes"  # type: ignore[index]
        assert seen["tags"]["mlrun.exit_code"] == "0"  # type: ignore[index]
