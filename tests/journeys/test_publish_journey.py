"""Every way a run ends, against a real `mlflow server` that proxies artifacts. A user's Slurm
day: a job run followed to its end, a job cancelled while it waits and settled by `runs gc`,
and a sweep whose children are one Slurm job array. A local run whose mlrun was killed, ended
by `runs gc`; a Ray job whose node never started mlrun, settled by its follower. Every file
each run wrote (its logs, its run record, the sweep's summary, the engine's log) is read back
from the server with MLflow's own client: each record says how its run ended, none holds the
tracking token, and nothing is left staged on this machine."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.backends.engines import slurm_job_state, wait_for
from tests.conftest import child_env, mlrun_command, run_mlrun, write_files
from tests.servers import MlflowServer

pytestmark = [pytest.mark.journey, pytest.mark.slow]

PROJECT = {
    "MLproject": (
        "name: steps\n"
        "entry_points:\n"
        "  main:\n"
        "    parameters: {x: {type: int, default: 0}}\n"
        '    command: "echo step {x} out; echo step {x} err >&2"\n'
        "  wait:\n"
        '    command: "echo started; sleep 300"\n'
    )
}
CONFIG = json.dumps({"partition": "debug"})
PENDING_AN_HOUR = json.dumps({"partition": "debug", "sbatch_args": ["--begin=now+1hour"]})
TOKEN = "tok-publish-journey-0123456789"  # a plain server ignores it; mlrun must not write it


@pytest.fixture
def server(tmp_path: Path) -> Iterator[MlflowServer]:
    started = MlflowServer(f"sqlite:///{tmp_path / 'server' / 'mlflow.db'}", tmp_path / "server")
    started.start()
    yield started
    started.stop()


def _environment(tmp_path: Path, token: str = TOKEN, **more: str) -> dict[str, str]:
    return {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "MLRUN_CACHE_DIR": str(tmp_path / "cache"),
        "MLFLOW_TRACKING_TOKEN": token,
        **more,
    }


def _mlrun(tmp_path: Path, conf: str, *args: str) -> dict[str, object]:
    done = run_mlrun(*args, cwd=tmp_path, timeout=300, **_environment(tmp_path, SLURM_CONF=conf))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    document: dict[str, object] = json.loads(done.stdout) if "--json" in args else {}
    return document


def _nothing_left(tmp_path: Path, files: list[str]) -> None:
    """No file holds the token, and every staged artifact was uploaded."""
    assert not any(TOKEN in text for text in files)
    staged = tmp_path / "cache" / "artifact-staging"
    assert not staged.exists() or not [p for p in staged.rglob("*") if p.is_file()]


def _server_files(uri: str, run_id: str, into: Path) -> dict[str, str]:
    """Every artifact of the run, by path, as MLflow's client downloads it from the server."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)

    def paths(folder: str | None) -> Iterator[str]:
        for entry in client.list_artifacts(run_id, folder):
            yield from paths(entry.path) if entry.is_dir else [entry.path]

    files = {}
    for path in sorted(paths(None)):
        local = client.download_artifacts(run_id, path, str(into))
        files[path] = Path(local).read_text(encoding="utf-8")
    return files


def _status(uri: str, run_id: str) -> str:
    from mlflow import MlflowClient

    return str(MlflowClient(tracking_uri=uri).get_run(run_id).info.status)


@pytest.mark.slurm
def test_every_run_a_slurm_day_ends_is_on_the_server_whole(
    tmp_path: Path, slurm_conf: str, server: MlflowServer
) -> None:
    project = write_files(tmp_path / "steps", PROJECT)
    uri = ("--tracking-uri", server.uri)
    slurm = ("--no-env", "--backend", "slurm", "--json")
    job = _mlrun(tmp_path, slurm_conf, "run", "steps", "-P", "x=7", *slurm,
                 "--backend-config", CONFIG, *uri)["run"]  # fmt: skip
    assert isinstance(job, dict) and job["status"] == "FINISHED"

    pending = _mlrun(tmp_path, slurm_conf, "run", "steps", *slurm, "--detach",
                     "--backend-config", PENDING_AN_HOUR, *uri)["run"]  # fmt: skip
    assert isinstance(pending, dict)
    env = {**os.environ, "SLURM_CONF": slurm_conf}
    subprocess.run(["scancel", str(pending["job_id"])], env=env, check=True)
    wait_for(lambda: slurm_job_state(str(pending["job_id"]), slurm_conf) == "CANCELLED", 60,
             "the pending job's cancel")  # fmt: skip
    _mlrun(tmp_path, slurm_conf, "runs", "gc", *uri)

    sweep = _mlrun(tmp_path, slurm_conf, "sweep", "steps", "-P", "x=1,2", *slurm,
                   "--backend-config", CONFIG, "--experiment-name", "swept", *uri)["sweep"]  # fmt: skip
    assert isinstance(sweep, dict) and sweep["status"] == "FINISHED"
    children = {str(row["params"]["x"]): str(row["run_id"]) for row in sweep["children"]}

    seen = {
        run_id: _server_files(server.uri, run_id, tmp_path / "downloads" / run_id)
        for run_id in (job["run_id"], pending["run_id"], sweep["parent_run_id"], *children.values())
    }  # fmt: skip

    ran = {"7": str(job["run_id"]), **children}
    for x, run_id in ran.items():
        files = seen[run_id]
        assert {"logs/stdout.log", "logs/stderr.log", "provenance/run.json"} <= set(files)
        assert files["logs/stdout.log"] == f"step {x} out\n"
        assert files["logs/stderr.log"] == f"step {x} err\n"
        record = json.loads(files["provenance/run.json"])
        assert record["run"]["status"] == "FINISHED" == _status(server.uri, run_id)
        assert record["run"]["exit_code"] == 0
        assert record["source"]["directory"] == str(project)  # what the user submitted

    cancelled = json.loads(seen[str(pending["run_id"])]["provenance/run.json"])
    assert cancelled["run"]["status"] == "KILLED" == _status(server.uri, str(pending["run_id"]))

    summary = json.loads(seen[str(sweep["parent_run_id"])]["sweep/summary.json"])
    assert summary == {"format": 1, "sweep": sweep}
    assert _status(server.uri, str(sweep["parent_run_id"])) == "FINISHED"

    _nothing_left(tmp_path, [text for files in seen.values() for text in files.values()])


def test_a_local_run_whose_mlrun_died_is_published_by_runs_gc(
    tmp_path: Path, server: MlflowServer
) -> None:
    write_files(tmp_path / "steps", PROJECT)
    # No token here: with a secret to mask, mlrun holds back the last bytes of the output (as
    # long as the secret) until more output comes, and "started" would never be seen.
    env = _environment(tmp_path, token="")
    runner = subprocess.Popen(
        mlrun_command("run", "steps", "-e", "wait", "--no-env", "--tracking-uri", server.uri),
        cwd=tmp_path, env=child_env(**env), stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert runner.stdout is not None and runner.stdout.readline() == b"started\n"
    finally:
        os.kill(runner.pid, signal.SIGKILL)  # its run stays RUNNING, its logs staged here
        runner.wait()
    gc = run_mlrun("runs", "gc", "--tracking-uri", server.uri, cwd=tmp_path, **env)
    assert gc.returncode == 0 and gc.stdout.endswith("1 stuck run found\n"), gc.stderr
    run_id = gc.stdout.split()[1]
    assert _status(server.uri, run_id) == "KILLED"
    files = _server_files(server.uri, run_id, tmp_path / "downloads")
    assert files["logs/stdout.log"] == "started\n"
    _nothing_left(tmp_path, list(files.values()))


@pytest.mark.ray
def test_a_ray_job_that_never_ran_mlrun_is_published_with_rays_log(
    tmp_path: Path, ray_address: str, server: MlflowServer
) -> None:
    """A broken `mlrun_command`: the follower settles the run from Ray's word."""
    project = write_files(tmp_path / "steps", PROJECT)
    code = "import sys; print('the-last-line'); sys.exit(7)"
    config = {"address": ray_address, "mlrun_command": shlex.join([sys.executable, "-c", code])}
    done = run_mlrun(
        "run", "steps", "--no-env", "--backend", "ray", "--json", "--backend-config",
        json.dumps(config), "--tracking-uri", server.uri, cwd=tmp_path, timeout=300,
        **_environment(tmp_path),
    )  # fmt: skip
    assert done.returncode == 7, done.stderr
    run_id = str(json.loads(done.stdout)["run"]["run_id"])
    assert _status(server.uri, run_id) == "FAILED"
    files = _server_files(server.uri, run_id, tmp_path / "downloads")
    assert "the-last-line" in files["logs/engine.log"]
    record = json.loads(files["provenance/run.json"])
    assert record["run"]["status"] == "FAILED"
    assert record["source"]["directory"] == str(project)
    _nothing_left(tmp_path, list(files.values()))
