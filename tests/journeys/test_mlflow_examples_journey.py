"""A user brings MLflow's own example projects (as MLflow ships them: python_env.yaml with only
dependencies, no `python`): validates them, runs a small hyperparameter comparison and a
multistep workflow step by step with the current interpreter, lists the runs with a filter
and sees their params and metrics, and reads the same runs with MLflow's own client."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, run_mlrun

pytestmark = [pytest.mark.journey, pytest.mark.slow]

EXAMPLES = REPO / "tests" / "fixtures" / "mlflow_examples"


def _mlrun(work: Path, *args: str, **env: str) -> dict[str, object]:
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    done = run_mlrun(*args, cwd=work, timeout=300, PATH=path, **env)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return json.loads(done.stdout) if "--json" in args else {"stdout": done.stdout}


def _listed(work: Path, experiment: str, filter_string: str) -> list[dict[str, str]]:
    """`runs list --filter` as a user reads it: one mapping per row, by column header."""
    stdout = str(_mlrun(work, "runs", "list", "--experiment-name", experiment, "--filter",
                        filter_string)["stdout"])  # fmt: skip
    header, *rows = stdout.splitlines()
    columns = header.replace("RUN ID", "RUN_ID").replace("ENTRY POINT", "ENTRY_POINT").split()
    start = columns.index("START")
    columns[start : start + 1] = ["START", "START_TIME"]  # a date and a time
    return [dict(zip(columns, row.split(), strict=True)) for row in rows]


def _train(work: Path, learning_rate: str) -> str:
    result = _mlrun(work, "run", "hyperparam", "-e", "train", "-P",
                    f"learning_rate={learning_rate}", "--no-env", "--experiment-name",
                    "hyperparam", "--json")  # fmt: skip
    run = result["run"]
    assert isinstance(run, dict) and run["status"] == "FINISHED"
    return str(run["run_id"])


def test_mlflow_examples_validate_run_and_list_with_their_values(tmp_path: Path) -> None:
    work = tmp_path / "work"
    for example in ("hyperparam", "multistep_workflow", "sklearn_elasticnet_wine"):
        shutil.copytree(EXAMPLES / example, work / example)
        done = run_mlrun("validate", example, cwd=work)
        assert done.returncode == 0, done.stderr
        assert done.stdout == (
            f"{example}/MLproject: valid; entry points: "
            f"{done.stdout.split('entry points: ')[1].split(';')[0]}; "
            "environment: MLproject python_env\n"
        )
        assert done.stderr == ""

    slow, fast = _train(work, "0.1"), _train(work, "0.01")
    [best] = _listed(work, "hyperparam", "metrics.val_rmse < 0.55")
    assert best["RUN_ID"] == fast[:8]
    assert (best["params.learning_rate"], best["metrics.val_rmse"]) == ("0.01", "0.5")
    assert best["params.momentum"] == "0.0" and best["params.epochs"] == "32"
    both = _listed(work, "hyperparam", "params.epochs = '32'")
    assert [row["RUN_ID"] for row in both] == [fast[:8], slow[:8]]
    assert [row["metrics.val_rmse"] for row in both] == ["0.5", "0.59"]

    _mlrun(work, "run", "multistep_workflow", "-e", "load_raw_data", "--no-env",
           "--experiment-name", "multistep")  # fmt: skip
    ratings = work / "multistep_workflow" / "ratings.csv"
    assert ratings.is_file()
    _mlrun(work, "run", "multistep_workflow", "-e", "etl_data", "-P", f"ratings_csv={ratings}",
           "-P", "max_row_limit=2", "--no-env", "--experiment-name", "multistep")  # fmt: skip
    _mlrun(work, "run", "multistep_workflow", "-e", "als", "-P", f"ratings_data={ratings}",
           "-P", "reg_param=0.2", "-P", "rank=4", "--no-env", "--experiment-name",
           "multistep")  # fmt: skip
    [etl] = _listed(work, "multistep", "params.max_row_limit = '2'")
    assert (etl["params.max_row_limit"], etl["metrics.rows"]) == ("2", "2")
    [als] = _listed(work, "multistep", "metrics.test_mse > 0.5")
    assert (als["params.reg_param"], als["params.rank"], als["metrics.test_mse"]) == (
        "0.2", "4", "0.85"
    )  # fmt: skip

    _mlrun(work, "run", "sklearn_elasticnet_wine", "-P", "alpha=0.3", "--no-env",
           ARGS_OUT=str(tmp_path / "args.txt"))  # fmt: skip
    assert (tmp_path / "args.txt").read_text().split("\n") == ["0.3", "0.1"]

    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=(work / "mlruns").as_uri())
    experiment = client.get_experiment_by_name("hyperparam")
    assert experiment is not None
    found = client.search_runs([experiment.experiment_id], "metrics.val_rmse < 0.55")
    assert [run.info.run_id for run in found] == [fast]
    assert found[0].data.params["learning_rate"] == "0.01"
