"""`synchronous=False` beyond plain local runs: on the job backends `run()` returns once the
job is submitted, and `wait`, `get_status` and `cancel` go through the engine (a one-node
Slurm cluster, a Ray head, both real); a docker_env run is a local run in a container."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlrun_cli import projects
from tests.backends.engines import wait_for
from tests.backends.jobs_common import sleeper
from tests.conftest import write_files
from tests.projects.helpers import recorded

pytestmark = pytest.mark.slow


def _config(backend: str, request: pytest.FixtureRequest) -> dict[str, object]:
    if backend == "slurm":
        return {"partition": "debug"}
    return {"address": request.getfixturevalue("ray_address"), "num_cpus": 1}


@pytest.fixture(params=[pytest.param("slurm", marks=pytest.mark.slurm),
                        pytest.param("ray", marks=pytest.mark.ray)])  # fmt: skip
def engine(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, dict[str, object]]:
    backend = str(request.param)
    if backend == "slurm":
        monkeypatch.setenv("SLURM_CONF", request.getfixturevalue("slurm_conf"))
    return backend, _config(backend, request)


def test_wait_get_status_and_cancel_through_the_engine(
    tmp_path: Path, store: str, engine: tuple[str, dict[str, object]]
) -> None:
    backend, config = engine
    project = str(sleeper(tmp_path))

    def submit(**parameters: int) -> projects.SubmittedRun:
        return projects.run(project, parameters=parameters, env_manager="local",
                            backend=backend, backend_config=config, tracking_uri=store,
                            synchronous=False)  # fmt: skip

    failing = submit(code=3)
    sleeping = submit(seconds=300)
    assert sleeping.get_status() in ("SCHEDULED", "RUNNING")
    assert failing.wait() is False
    assert failing.get_status() == "FAILED"
    assert recorded(store, failing.run_id).tags["mlrun.exit_code"] == "3"
    wait_for(lambda: sleeping.get_status() == "RUNNING", 120, "RUNNING")
    sleeping.cancel()
    assert sleeping.get_status() == "KILLED"
    assert sleeping.wait() is False
    finished = projects.run(project, env_manager="local", backend=backend,
                            backend_config=json.dumps(config), tracking_uri=store)  # fmt: skip
    assert finished.get_status() == "FINISHED"
    assert recorded(store, finished.run_id).tags["mlrun.backend"] == backend


@pytest.mark.docker
def test_wait_get_status_and_cancel_on_docker(
    tmp_path: Path, store: str, docker_host: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A docker_env run started asynchronously runs in a thread here; cancel is `docker stop`."""
    monkeypatch.setenv("DOCKER_HOST", docker_host)
    project = write_files(tmp_path / "p", {
        "MLproject": "docker_env:\n  image: python:3.11-slim\nentry_points:\n  main:\n"
        "    parameters: {seconds: {type: int, default: 0}}\n"
        "    command: cat /etc/hostname > host.txt; touch started; sleep {seconds}\n",
    })  # fmt: skip
    quick = projects.run(str(project), tracking_uri=store, synchronous=False,
                         docker_args={"hostname": "api-host"})  # fmt: skip
    assert quick.wait() is True
    assert quick.get_status() == "FINISHED"
    assert (project / "host.txt").read_text() == "api-host\n"
    (project / "started").unlink()
    sleeping = projects.run(str(project), parameters={"seconds": 300}, tracking_uri=store,
                            synchronous=False)  # fmt: skip
    wait_for((project / "started").exists, 120, "the container started")
    assert sleeping.get_status() == "RUNNING"
    sleeping.cancel()
    assert sleeping.get_status() == "KILLED"
    assert sleeping.wait() is False
    assert recorded(store, sleeping.run_id).tags["mlflow.docker.image.uri"] == "python:3.11-slim"


@pytest.mark.docker
def test_build_image_bakes_the_code_into_an_image(
    tmp_path: Path, store: str, docker_host: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", docker_host)
    project = write_files(tmp_path / "p", {
        "MLproject": "docker_env:\n  image: python:3.11-slim\nentry_points:\n  main:\n"
        "    command: cat /mlflow/projects/code/data.txt\n",
        "data.txt": "baked\n",
    })  # fmt: skip
    baked = projects.run(str(project), tracking_uri=store, build_image=True)
    assert recorded(store, baked.run_id).tags["mlflow.docker.image.uri"].startswith("mlrun-env:")
