"""A user's Slurm day against a real `mlflow server` that proxies artifacts: a job run followed
to its end, a job cancelled while it waits and settled by `runs gc`, and a sweep whose
children are one Slurm job array. Every file each run wrote (its logs, its run record, the
sweep's summary) is read back from the server with MLflow's own client: each record says how
its run ended, none holds the tracking token, and nothing is left staged on this machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.backends.engines import slurm_conf, slurm_job_state, wait_for
from tests.conftest import run_mlrun, write_files
from tests.servers import MlflowServer

pytestmark = [pytest.mark.journey, pytest.mark.slow, pytest.mark.slurm]
__all__ = ["slurm_conf"]

PROJECT = {
    "MLproject": (
        "name: steps\n"
        "entry_points:\n"
        "  main:\n"
        "    parameters: {x: {type: int, default: 0}}\n"
        '    command: "echo step {x} out; echo step {x} err >&2"\n'
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


def _mlrun(tmp_path: Path, conf: str, *args: str) -> dict[str, object]:
    env = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "MLRUN_CACHE_DIR": str(tmp_path / "cache"),
        "MLFLOW_TRACKING_TOKEN": TOKEN,
        "SLURM_CONF": conf,
    }
    done = run_mlrun(*args, cwd=tmp_path, timeout=300, **env)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    document: dict[str, object] = json.loads(done.stdout) if "--json" in args else {}
    return document


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

    every_file = [text for files in seen.values() for text in files.values()]
    assert not any(TOKEN in text for text in every_file)
    staged = tmp_path / "cache" / "artifact-staging"
    assert not staged.exists() or not [p for p in staged.rglob("*") if p.is_file()]
