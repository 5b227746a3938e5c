"""The README's seed workflow in a git repository with ./mlruns beside the code (not ignored):
create the experiment, train twice with --reuse (and again once the index of runs with outputs
is lost and MLflow's client wrote runs), infer on the trained model, list with a
filter, train with another alpha (over the same model file) and see --reuse of the first train
it again rather than stand in for it, compare the two, reproduce the first, and read everything
back with MLflow's own client."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import EXAMPLE, run_mlrun
from tests.gitrepos import commit_all, git

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

pytestmark = [pytest.mark.journey, pytest.mark.slow]


def _mlrun(repo: Path, *args: str) -> dict[str, object]:
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    done = run_mlrun(*args, cwd=repo, timeout=300, PATH=path)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return json.loads(done.stdout) if "--json" in args else {"stderr": done.stderr}


def _repository(tmp_path: Path) -> Path:
    repo = tmp_path / "iris"
    shutil.copytree(
        EXAMPLE, repo, ignore=shutil.ignore_patterns("*.joblib", "mlruns", ".gitignore")
    )  # neither the store nor the model is ignored: mlrun must leave them out by itself
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "user@example.com")
    git(repo, "config", "user.name", "User")
    commit_all(repo, "iris")
    return repo


def test_train_twice_with_reuse_in_git_then_infer_and_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = _repository(tmp_path)
    _mlrun(repo, "experiments", "create", "--experiment-name", "iris")
    train = ("run", ".", "-e", "train", "-P", "alpha=0.01", "--no-env", "--reuse",
             "--require-clean", "--experiment-name", "iris", "--json")  # fmt: skip
    first = _mlrun(repo, *train)["run"]
    second = _mlrun(repo, *train)["run"]
    assert isinstance(first, dict) and isinstance(second, dict)
    assert second["run_id"] == first["run_id"], "the second identical run was not reused"

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=(repo / "mlruns").as_uri())
    recorded = client.get_run(str(first["run_id"]))
    assert recorded.data.tags["mlflow.source.git.dirty"] == "false"
    assert "mlruns" not in recorded.data.tags.get("mlflow.source.git.diff", "")
    assert recorded.info.status == "FINISHED"

    # The index of runs with outputs lost (deleted, or an older mlrun wrote here) and runs
    # written by MLflow's own client: the next identical run is still reused, the index back.
    for index in (repo / "mlruns").glob("*/.mlrun-tagged-*"):
        index.unlink()
    for _ in range(3):
        client.set_terminated(client.create_run(recorded.info.experiment_id).info.run_id)
    third = _mlrun(repo, *train)["run"]
    assert isinstance(third, dict) and third["run_id"] == first["run_id"]
    assert list((repo / "mlruns").glob("*/.mlrun-tagged-*"))

    model = repo / "models" / "model.joblib"
    assert model.is_file()
    _mlrun(repo, "run", ".", "-e", "infer", "-P", f"classifier_path={model}",
           "-P", "input_file=data/iris.csv", "--no-env", "--experiment-name", "iris")  # fmt: skip
    listed = run_mlrun("runs", "list", "--experiment-name", "iris", "--filter",
                       "params.alpha = '0.01'", cwd=repo)  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert str(first["run_id"])[:8] in listed.stdout
    names = {run.info.run_id for run in client.search_runs([recorded.info.experiment_id])}
    assert str(first["run_id"]) in names and len(names) >= 2

    other = _mlrun(repo, "run", ".", "-e", "train", "-P", "alpha=0.5", "--no-env",
                   "--require-clean", "--experiment-name", "iris", "--json")["run"]  # fmt: skip
    assert isinstance(other, dict)
    _reuse_trains_again_over_the_other_model(repo, train, client, first, model)
    compared = run_mlrun("runs", "compare", str(first["run_id"]), str(other["run_id"]), cwd=repo)
    assert compared.returncode == 0, compared.stderr
    alpha_row = next(line for line in compared.stdout.splitlines() if " alpha " in line)
    assert "0.01" in alpha_row and "0.5" in alpha_row
    assert "mlflow.source.git.commit" not in compared.stdout, "same commit shown as a difference"

    reproduced = run_mlrun("reproduce", str(first["run_id"]), "--json", cwd=repo, timeout=300)
    assert reproduced.returncode == 0, reproduced.stderr
    assert "Traceback" not in reproduced.stderr
    again = client.get_run(json.loads(reproduced.stdout)["reproduce"]["run_id"])
    assert again.info.status == "FINISHED"
    assert again.data.tags["mlrun.reproduces"] == str(first["run_id"])
    assert again.data.metrics == recorded.data.metrics
    assert (
        again.data.tags["mlflow.source.git.commit"]
        == recorded.data.tags["mlflow.source.git.commit"]
    )


def _reuse_trains_again_over_the_other_model(
    repo: Path, train: tuple[str, ...], client: MlflowClient, first: dict[str, object], model: Path
) -> None:
    """models/model.joblib now holds the alpha=0.5 model: reusing the alpha=0.01 run would
    leave it there for the next infer, so --reuse trains again and says why."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    done = run_mlrun(*train, cwd=repo, timeout=300, PATH=path)
    assert done.returncode == 0, done.stderr
    assert "not run again" not in done.stderr
    message = f"output output_file (models/model.joblib) changed since run {first['run_id']}"
    assert f"mlrun: {message}; running again" in done.stderr
    rerun = json.loads(done.stdout)["run"]
    assert rerun["run_id"] != first["run_id"] and rerun["status"] == "FINISHED"
    recorded = client.get_run(str(first["run_id"])).data.tags
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    assert digest == recorded["mlrun.output.output_file.digest"], "the model is not alpha=0.01's"
