"""The example project swept and reproduced for real: a uv env, MLflow's own client reading."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from mlrun_cli.tracking.file_store import FileStore
from tests.conftest import EXAMPLE, run_mlrun
from tests.gitrepos import make_repo

ALPHAS = "0.0001,0.001,0.01,0.1,1,10"


@pytest.fixture(scope="module")
def env_root(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One env cache for the module: the example's env is built once."""
    return str(tmp_path_factory.mktemp("envs"))


@pytest.mark.slow
def test_the_example_sweep_records_six_children_that_mlflow_nests(
    tmp_path: Path, env_root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(
        EXAMPLE, tmp_path / "example_project", ignore=shutil.ignore_patterns("*.joblib")
    )
    done = run_mlrun(
        "sweep", "example_project", "-e", "train", "-P", f"alpha={ALPHAS}", "-j", "2",
        "--metric", "best_cv_score", "--order-by", "metrics.best_cv_score DESC", "--json",
        cwd=tmp_path, timeout=900, MLRUN_ENV_ROOT=env_root,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    sweep = json.loads(done.stdout)["sweep"]
    scores = [row["metrics"]["best_cv_score"] for row in sweep["children"]]
    assert len(scores) == 6 and scores == sorted(scores, reverse=True)

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=(tmp_path / "mlruns").as_uri())
    parent = sweep["parent_run_id"]
    children = client.search_runs(["0"], f"tags.mlflow.parentRunId = '{parent}'")
    assert len(children) == 6
    assert sorted(float(r.data.params["alpha"]) for r in children) == sorted(
        float(a) for a in ALPHAS.split(",")
    )
    assert {r.info.status for r in children} == {"FINISHED"}
    assert client.get_run(parent).info.status == "FINISHED"
    keys = {r.data.tags["mlrun.env.key"] for r in children}
    assert len(keys) == 1  # one env, built once, shared

    # the children share models/model.joblib: they ran one at a time, and each one's output
    # digest is of the model it logged itself, not of a sibling's
    store = FileStore(tmp_path / "mlruns")
    for child in (r for r in store.stored_runs(["0"]) if r.tags.get("mlflow.parentRunId")):
        logged = store.artifact_dir(child.info) / "model" / "model.joblib"
        own = hashlib.sha256(logged.read_bytes()).hexdigest()
        assert child.tags["mlrun.output.output_file.digest"] == own, child.params["alpha"]
    assert done.stderr.count("children share output output_file (") == 1, done.stderr


@pytest.mark.slow
def test_reproduce_rebuilds_the_same_code_and_packages_then_refuses_changed_data(
    tmp_path: Path, env_root: str
) -> None:
    files = {
        str(p.relative_to(EXAMPLE)): p.read_text()
        for p in EXAMPLE.rglob("*")
        if p.is_file() and p.suffix != ".joblib"
    }
    repo = make_repo(tmp_path / "example_project", files)
    train = repo / "train.py"
    train.write_text(train.read_text().replace("random_state=0", "random_state=1"))  # dirty
    data = tmp_path / "iris.csv"  # outside the project: reproduce reads it where it was
    data.write_text((repo / "data" / "iris.csv").read_text())
    done = run_mlrun(
        "run", "example_project", "-e", "train", "-P", "alpha=0.01", "-P", f"input_file={data}",
        "--json", cwd=tmp_path, timeout=900, MLRUN_ENV_ROOT=env_root,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    run_id = json.loads(done.stdout)["run"]["run_id"]
    train.write_text(train.read_text().replace("random_state=1", "random_state=2"))

    again = run_mlrun(
        "reproduce", run_id, "--json", cwd=tmp_path, timeout=900, MLRUN_ENV_ROOT=env_root
    )
    assert again.returncode == 0, again.stderr
    result = json.loads(again.stdout)["reproduce"]
    assert [m["name"] for m in result["metrics"]] == ["best_cv_score"]
    assert all(m["matches"] for m in result["metrics"])
    store = FileStore(tmp_path / "mlruns")
    original, new = (store.runs_with_prefix(i)[0] for i in (run_id, result["run_id"]))
    lock = "environment/requirements.lock.txt"
    assert store.read_artifact(new.info, lock) == store.read_artifact(original.info, lock)
    assert "random_state=1" in new.tags["mlflow.source.git.diff"]
    assert new.tags["mlflow.source.git.diff"] == original.tags["mlflow.source.git.diff"]

    data.write_text(data.read_text() + "5.0,3.0,1.5,0.2,setosa\n")
    refused = run_mlrun("reproduce", run_id, cwd=tmp_path, MLRUN_ENV_ROOT=env_root)
    assert refused.returncode == 2
    assert f"input input_file ({data}) changed since run {run_id}" in refused.stderr
