"""The example's `train` entry point for real, read back with MLflow's own client."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE, run_mlrun


@pytest.mark.slow
def test_train_then_infer_and_mlflow_reads_the_run(tmp_path: Path, monkeypatch) -> None:
    project = tmp_path / "example_project"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("*.joblib"))  # as in a clone

    # `python` in the command must be this interpreter, which has the test extras.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    created = run_mlrun(
        "experiments", "create", "--experiment-name", "iris", cwd=tmp_path, PATH=path
    )
    assert created.returncode == 0, created.stderr
    done = run_mlrun(
        "run",
        "example_project",
        "-e",
        "train",
        "--no-env",
        "-P",
        "alpha=0.01",
        "--experiment-name",
        "iris",
        "--json",
        cwd=tmp_path,
        timeout=300,
        PATH=path,
    )
    assert done.returncode == 0, done.stderr
    assert "best cv score" in done.stderr  # the entry point's stdout, moved aside by --json

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    import json

    import mlflow

    run_id = json.loads(done.stdout)["run"]["run_id"]
    client = mlflow.MlflowClient(tracking_uri=(tmp_path / "mlruns").as_uri())
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == "iris"
    assert run.data.params["alpha"] == "0.01"
    assert run.data.params["input_file"] == str(project / "data" / "iris.csv")
    assert run.data.params["best_n_components"] in {"2", "3", "4"}
    assert 0.8 < run.data.metrics["best_cv_score"] <= 1.0
    assert run.data.tags["mlflow.project.entryPoint"] == "train"
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    # environment/: the interpreter's packages, unless `python` is a launcher (a pyenv shim)
    assert artifacts - {"environment"} == {"data", "logs", "model", "provenance"}
    assert {a.path for a in client.list_artifacts(run_id, "provenance")} == {
        "provenance/inputs.json",
        "provenance/outputs.json",  # output_file did not exist before the run: an output
        "provenance/run.json",
    }
    assert (
        run.data.tags["mlrun.output.output_file.digest"]
        == hashlib.sha256((project / "models" / "model.joblib").read_bytes()).hexdigest()
    )
    assert (
        run.data.tags["mlrun.input.input_file.digest"]
        == hashlib.sha256((project / "data" / "iris.csv").read_bytes()).hexdigest()
    )
    assert {d.dataset.name for d in run.inputs.dataset_inputs} == {"iris.csv"}
    assert {a.path for a in client.list_artifacts(run_id, "model")} == {"model/model.joblib"}
    assert {a.path for a in client.list_artifacts(run_id, "data")} == {"data/iris.csv"}
    assert (project / "models" / "model.joblib").is_file()

    inferred = run_mlrun(
        "run",
        "example_project",
        "-e",
        "infer",
        "--no-env",
        "-P",
        "classifier_path=example_project/models/model.joblib",
        "-P",
        "input_file=example_project/data/iris.csv",
        cwd=tmp_path,
        timeout=300,
        PATH=path,
    )
    assert inferred.returncode == 0, inferred.stderr
    assert inferred.stdout.splitlines()[0] == "5.1,3.5,1.4,0.2 -> setosa"
    assert len(inferred.stdout.splitlines()) == 150
