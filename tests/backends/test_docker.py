"""docker_env projects in real containers, on a real engine (started here when none runs).

The engine comes from scripts/docker-engine.sh, the script CI uses too. Where it cannot be had
(not root, outside CI) the tests are skipped; in CI (CI=true) that is a failure instead.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlrun_cli.tracking.file_store import FileStore
from tests.conftest import REPO, child_env, mlrun_command, write_files

pytestmark = [pytest.mark.slow, pytest.mark.docker]
ENGINE_SCRIPT = REPO / "scripts" / "docker-engine.sh"


@pytest.fixture(scope="session")
def docker_host() -> Iterator[str]:
    """DOCKER_HOST of a reachable engine; one is started (and stopped) when there is none."""
    if os.environ.get("DOCKER_HOST"):
        yield os.environ["DOCKER_HOST"]
        return

    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("CI runs as root and must start a docker engine for these tests")
        pytest.skip("starting a docker engine needs root (or set DOCKER_HOST)")
    started = subprocess.run(["bash", str(ENGINE_SCRIPT), "start"], capture_output=True, text=True)
    if started.returncode != 0:
        message = f"could not start a docker engine: {started.stderr[-2000:]}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    yield started.stdout.strip().split("DOCKER_HOST=")[-1]
    if "starting dockerd" in started.stderr:  # only the engine this session started: another
        subprocess.run(["bash", str(ENGINE_SCRIPT), "stop"], check=False)  # suite may use it


def mlrun(
    tmp_path: Path, docker_host: str, *args: str, timeout: float = 600, **env: str
) -> subprocess.CompletedProcess[str]:
    """mlrun as a user runs it, with the engine's DOCKER_HOST and `env` in its environment."""
    return subprocess.run(
        mlrun_command(*args),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=child_env(MLRUN_ENV_ROOT=str(tmp_path / "envs"), DOCKER_HOST=docker_host, **env),
        stdin=subprocess.DEVNULL,
    )


def stored(tmp_path: Path, stdout: str):
    run_id = json.loads(stdout)["run"]["run_id"]
    info, _params, tags = FileStore(tmp_path / "mlruns").read_run(run_id)
    return info, tags, tmp_path / "mlruns" / "0" / run_id / "artifacts"


def test_a_python_image_logs_a_metric_into_the_hosts_store(docker_host, tmp_path) -> None:
    write_files(
        tmp_path / "p",
        {
            "MLproject": "docker_env:\n  image: python:3.11-slim\nentry_points:\n  main:\n"
            "    command: python train.py\n",
            "train.py": "import mlrun_log as ml, os\nml.log_metric('acc', 0.75)\n"
            "print('in', os.getcwd(), os.getuid())\n",
        },
    )
    done = mlrun(tmp_path, docker_host, "run", "p", "--json")
    assert done.returncode == 0, done.stderr
    info, tags, artifacts = stored(tmp_path, done.stdout)
    assert info.status.name == "FINISHED"
    assert tags["mlflow.project.env"] == "docker"
    assert tags["mlflow.docker.image.uri"] == "python:3.11-slim"
    assert tags["mlflow.docker.image.id"].startswith("sha256:")
    assert (
        artifacts / "logs" / "stdout.log"
    ).read_text() == f"in /mlflow/projects/code {os.getuid()}\n"
    metric = tmp_path / "mlruns" / "0" / info.run_id / "metrics" / "acc"
    assert metric.read_text().split()[1] == "0.75"
    owners = {p.stat().st_uid for p in (tmp_path / "mlruns").rglob("*")}
    assert owners == {os.getuid()}


def test_a_dockerfile_image_with_mlflow_is_built_once(docker_host, tmp_path) -> None:
    write_files(
        tmp_path / "p",
        {
            # A layer of this test's own: another suite on the same engine that prunes its
            # envs removes its own images, never this one (a comment alone would give both
            # suites one image, which the last untagging deletes under the other).
            "Dockerfile": "FROM python:3.11-slim\nRUN pip install -q mlflow-skinny\n"
            f"RUN echo {uuid.uuid4()} > /suite-id\n",
            "MLproject": "docker_env:\n  dockerfile: Dockerfile\nentry_points:\n  main:\n"
            "    command: python train.py\n",
            "train.py": "import mlflow\nwith mlflow.start_run():\n    mlflow.log_metric('loss', 0.5)\n",
        },
    )
    first = mlrun(tmp_path, docker_host, "run", "p", "--json", timeout=900)
    assert first.returncode == 0, first.stderr
    assert "building Dockerfile image" in first.stderr
    info, tags, artifacts = stored(tmp_path, first.stdout)
    assert tags["mlflow.docker.image.uri"] == f"mlrun-env:{tags['mlrun.env.key']}"
    assert (tmp_path / "mlruns" / "0" / info.run_id / "metrics" / "loss").is_file()
    assert (artifacts / "environment" / "build.log").is_file()
    second = mlrun(tmp_path, docker_host, "run", "p", "--json")
    assert second.returncode == 0, second.stderr
    assert "building" not in second.stderr
    assert f"reusing image mlrun-env:{tags['mlrun.env.key']}" in second.stderr
    envs = json.loads(mlrun(tmp_path, docker_host, "envs", "list", "--json").stdout)["envs"]
    assert [e["manager"] for e in envs] == ["docker"]
    image = tags["mlflow.docker.image.uri"]
    import docker

    client = docker.DockerClient(base_url=docker_host)
    # the image's size, not the few bytes of its cache entry
    assert envs[0]["size_bytes"] >= client.images.get(image).attrs["Size"]
    pruned = mlrun(tmp_path, docker_host, "envs", "prune", "--all")
    assert pruned.stdout.startswith("Removed 1 environment")
    assert not [i for i in client.images.list() if image in i.tags]


def test_docker_args_environment_and_volumes_reach_the_container(docker_host, tmp_path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "note.txt").write_text("from the host\n")
    write_files(
        tmp_path / "p",
        {
            "MLproject": (
                "docker_env:\n  image: mlrun-test/busybox\n"
                f"  volumes: ['{shared}:/shared:ro']\n"
                "  environment: [[MODE, fast], HOST_VALUE]\n"
                "entry_points:\n  main:\n"
                "    command: 'echo mode=$MODE host=$HOST_VALUE; cat /shared/note.txt; ls /sys/class/net'\n"
            ),
        },
    )
    done = mlrun(
        tmp_path, docker_host, "run", "p", "-A", "network=none", "--json", HOST_VALUE="copied"
    )
    assert done.returncode == 0, done.stderr
    _, _, artifacts = stored(tmp_path, done.stdout)
    assert (
        artifacts / "logs" / "stdout.log"
    ).read_text() == "mode=fast host=copied\nfrom the host\nlo\n"


def test_ctrl_c_stops_and_removes_the_container(docker_host, tmp_path) -> None:
    import docker

    write_files(
        tmp_path / "p",
        {
            "MLproject": "docker_env:\n  image: mlrun-test/busybox\nentry_points:\n  main:\n"
            "    command: 'echo started; sleep 120'\n",
        },
    )
    client = docker.DockerClient(base_url=docker_host)
    runner = subprocess.Popen(
        mlrun_command("run", "p"),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=child_env(MLRUN_ENV_ROOT=str(tmp_path / "envs"), DOCKER_HOST=docker_host),
    )
    assert runner.stdout is not None and runner.stdout.readline() == b"started\n"
    started = time.monotonic()
    runner.send_signal(signal.SIGINT)
    runner.communicate(timeout=60)
    assert runner.returncode == 130
    assert time.monotonic() - started < 30  # stopped (SIGTERM to the container), not waited out
    [meta] = (tmp_path / "mlruns" / "0").glob("*/meta.yaml")
    info, _, _ = FileStore(tmp_path / "mlruns").read_run(meta.parent.name)
    assert info.status.name == "KILLED"
    # The run's container is gone (the engine may be shared: only this run's is looked for).
    ours = f"MLFLOW_RUN_ID={info.run_id}"
    containers = client.containers.list(all=True)
    assert not [c for c in containers if ours in (c.attrs["Config"].get("Env") or [])]
    assert (meta.parent / "artifacts" / "logs" / "stdout.log").read_text() == "started\n"


def test_path_parameters_point_inside_the_container(docker_host, tmp_path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "more.txt").write_text("volume data\n")
    write_files(
        tmp_path / "p",
        {
            "MLproject": (
                f"docker_env:\n  image: mlrun-test/busybox\n  volumes: ['{shared}:/shared']\n"
                "entry_points:\n  main:\n    parameters:\n"
                "      data: {type: path, default: data/in.txt}\n"
                f"      more: {{type: path, default: {shared}/more.txt}}\n"
                "    command: 'cat {data} {more}'\n"
            ),
            "data/in.txt": "project data\n",
        },
    )
    done = mlrun(tmp_path, docker_host, "run", "p", "--json")
    assert done.returncode == 0, done.stderr
    _, tags, artifacts = stored(tmp_path, done.stdout)
    assert tags["mlrun.command"] == "cat /mlflow/projects/code/data/in.txt /shared/more.txt"
    assert (artifacts / "logs" / "stdout.log").read_text() == "project data\nvolume data\n"


def test_build_image_bakes_the_code_in(docker_host, tmp_path) -> None:

    write_files(
        tmp_path / "p",
        {
            "MLproject": "docker_env:\n  image: mlrun-test/busybox\nentry_points:\n  main:\n"
            "    command: 'cat /mlflow/projects/code/data.txt; mount | grep -c /mlflow/projects/code || true'\n",
            "data.txt": "baked\n",
        },
    )
    done = mlrun(tmp_path, docker_host, "run", "p", "--build-image", "--json")
    assert done.returncode == 0, done.stderr
    _, tags, artifacts = stored(tmp_path, done.stdout)
    assert (
        artifacts / "logs" / "stdout.log"
    ).read_text() == "baked\n0\n"  # in the image, not mounted
    assert tags["mlflow.docker.image.uri"].startswith("mlrun-env:")


@pytest.mark.parametrize(
    ("docker_env", "message"),
    [
        (
            "  image: mlrun-test/no-such-image\n",
            "docker image 'mlrun-test/no-such-image' is not on this engine and cannot be pulled",
        ),
    ],
)
def test_docker_problems_are_one_line_and_leave_no_run(
    docker_host, tmp_path, docker_env, message
) -> None:
    write_files(
        tmp_path / "p",
        {"MLproject": f"docker_env:\n{docker_env}entry_points:\n  main:\n    command: 'true'\n"},
    )
    done = mlrun(tmp_path, docker_host, "run", "p")
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.splitlines()) == 1
    assert done.stderr.count("'") % 2 == 0 and done.stderr.count('"') % 2 == 0  # nothing cut
    assert not (tmp_path / "mlruns").exists()


def test_a_failed_build_fails_the_run_with_its_log(docker_host, tmp_path) -> None:
    token = f"mlrun-failed-step-{os.getpid()}-{time.time_ns()}"
    write_files(
        tmp_path / "p",
        {
            "Dockerfile": f"FROM mlrun-test/busybox\nRUN echo {token}; exit 7\n",
            "MLproject": "docker_env:\n  dockerfile: Dockerfile\nentry_points:\n  main:\n    command: 'true'\n",
        },
    )
    done = mlrun(tmp_path, docker_host, "run", "p", "--json")
    assert done.returncode == 3
    assert "building the Dockerfile image failed:" in done.stderr
    [meta] = (tmp_path / "mlruns" / "0").glob("*/meta.yaml")
    assert FileStore(tmp_path / "mlruns").read_run(meta.parent.name)[0].status.name == "FAILED"
    assert (meta.parent / "artifacts" / "environment" / "build.log").is_file()
    import docker

    containers = docker.DockerClient(base_url=docker_host).containers.list(all=True)
    assert not [c for c in containers if token in " ".join(c.attrs["Config"].get("Cmd") or [])]


def test_gpus_on_an_engine_without_gpus_is_one_line(docker_host, tmp_path) -> None:
    write_files(
        tmp_path / "p",
        {
            "MLproject": "docker_env:\n  image: mlrun-test/busybox\nentry_points:\n  main:\n"
            "    command: 'true'\n"
        },
    )
    done = mlrun(tmp_path, docker_host, "run", "p", "-A", "gpus=all")
    assert done.returncode == 1
    [line] = done.stderr.splitlines()[-1:]
    assert line.startswith("mlrun: error: docker could not start the container: ")
    assert line.endswith("-A gpus needs an engine with GPU support (the NVIDIA container toolkit)")
    assert "Traceback" not in done.stderr
    [meta] = (tmp_path / "mlruns" / "0").glob("*/meta.yaml")
    assert FileStore(tmp_path / "mlruns").read_run(meta.parent.name)[0].status.name == "FAILED"


def test_no_engine_is_one_line(tmp_path) -> None:
    write_files(
        tmp_path / "p",
        {
            "MLproject": "docker_env:\n  image: busybox\nentry_points:\n  main:\n    command: 'true'\n"
        },
    )
    done = subprocess.run(
        mlrun_command("run", "p"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=child_env(DOCKER_HOST=f"unix://{tmp_path}/nothing.sock"),
    )
    assert done.returncode == 2
    assert done.stderr.startswith(
        f"mlrun: error: no Docker engine reachable at unix://{tmp_path}/nothing.sock"
    )
    assert "set DOCKER_HOST" in done.stderr
