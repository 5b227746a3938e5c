"""A new user's reproduce workflow on the README's iris project in a git repository: train a
tagged version from mlrun's source cache, prune the checkouts, reproduce; train from the
working tree, reproduce without touching its model; read both back with MLflow's client."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE, run_mlrun
from tests.gitrepos import commit_all, git

pytestmark = [pytest.mark.journey, pytest.mark.slow]


def _mlrun(repo: Path, cache: Path, *args: str) -> dict[str, object]:
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    done = run_mlrun(*args, cwd=repo, timeout=300, PATH=path, MLRUN_CACHE_DIR=str(cache))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return json.loads(done.stdout) if "--json" in args else {"stdout": done.stdout}


def _repository(tmp_path: Path) -> Path:
    repo = tmp_path / "iris"
    shutil.copytree(EXAMPLE, repo, ignore=shutil.ignore_patterns("*.joblib", "mlruns"))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "user@example.com")
    git(repo, "config", "user.name", "User")
    commit_all(repo, "iris")
    git(repo, "tag", "v1")
    return repo


def test_reproduce_after_prune_and_from_the_working_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = _repository(tmp_path)
    cache = tmp_path / "cache"
    (repo / "models").mkdir(exist_ok=True)  # ignored and empty: not in any checkout
    tagged = _mlrun(repo, cache, "run", ".", "--version", "v1", "-e", "train", "--no-env",
                    "--json")["run"]  # fmt: skip
    assert isinstance(tagged, dict)
    pruned = _mlrun(repo, cache, "envs", "prune", "--all")
    assert "1 source checkout" in str(pruned["stdout"])
    assert not any((cache / "sources").glob("*/checkouts/*"))

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=(repo / "mlruns").as_uri())
    first = client.get_run(str(tagged["run_id"]))
    again = _mlrun(repo, cache, "reproduce", str(tagged["run_id"]), "--json")["reproduce"]
    assert isinstance(again, dict) and again["exit_code"] == 0
    second = client.get_run(str(again["run_id"]))
    assert second.info.status == "FINISHED"
    assert second.data.metrics == first.data.metrics
    assert second.data.tags["mlflow.source.name"] == first.data.tags["mlflow.source.name"]
    assert second.data.tags["mlflow.source.name"] == repo.as_uri()

    local = _mlrun(repo, cache, "run", ".", "-e", "train", "--no-env", "--json")["run"]
    assert isinstance(local, dict)
    model = repo / "models" / "model.joblib"
    before = (model.read_bytes(), model.stat().st_mtime_ns)
    again = _mlrun(repo, cache, "reproduce", str(local["run_id"]), "--json")["reproduce"]
    assert isinstance(again, dict) and again["exit_code"] == 0
    assert (model.read_bytes(), model.stat().st_mtime_ns) == before
    original, copy = client.get_run(str(local["run_id"])), client.get_run(str(again["run_id"]))
    assert copy.data.metrics == original.data.metrics
    assert copy.data.tags["mlflow.source.name"] == original.data.tags["mlflow.source.name"]
    assert Path(copy.data.params["output_file"]).is_file()
    assert Path(copy.data.params["output_file"]) != model
