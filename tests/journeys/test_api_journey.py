"""The multistep example as a user runs it: `mlrun run` of its driver, which runs load ->
featurize -> train through `mlrun_cli.projects.run` with `reuse=True`, each step reading the
previous step's artifact by `runs:/`. Run again, change a parameter, change one step's code:
each time exactly the changed steps (and those whose input content changed) run again, the
steps nest under the driver that ran them, and MLflow's own client reads it all back."""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, run_mlrun
from tests.projects.helpers import recorded

pytestmark = [pytest.mark.journey]

EXAMPLE = REPO / "examples" / "multistep"
STEPS = ("load", "featurize", "train")


def _drive(project: Path, store: str, *params: str) -> tuple[str, dict[str, str]]:
    """The driver's run id and each step's run id, as the driver printed them."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    args = [f"-P{p}" for p in params]
    done = run_mlrun("run", ".", "--no-env", "--tracking-uri", store, *args, cwd=project,
                     PATH=path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    [driver] = re.findall(r"run ([0-9a-f]{32}) FINISHED", done.stderr)
    steps = dict(re.findall(r"^(\w+): run ([0-9a-f]{32})$", done.stdout, flags=re.M))
    assert list(steps) == list(STEPS)
    return driver, steps


def _run_count(store: str) -> int:
    return len(list(Path(store, "0").glob("*/meta.yaml")))


def test_multistep_reruns_exactly_the_changed_steps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "multistep"
    shutil.copytree(EXAMPLE, project)
    store = str(tmp_path / "mlruns")

    driver, cold = _drive(project, store)
    assert _run_count(store) == 4
    for step in STEPS:
        assert recorded(store, cold[step]).tags["mlflow.parentRunId"] == driver
    assert recorded(store, cold["featurize"]).params["raw"] == f"runs:/{cold['load']}/raw/raw.csv"

    _, again = _drive(project, store)
    assert again == cold, "an unchanged step ran again"
    assert _run_count(store) == 5  # only the second driver

    _, tuned = _drive(project, store, "alpha=0.5")
    assert {s: tuned[s] == cold[s] for s in STEPS} == {
        "load": True, "featurize": True, "train": False,
    }  # fmt: skip

    featurize = project / "featurize" / "featurize.py"
    featurize.write_text(featurize.read_text() + "# a comment changes the code, not the data\n")
    driver, edited = _drive(project, store)
    assert {s: edited[s] == cold[s] for s in STEPS} == {
        "load": True, "featurize": False, "train": True,
    }, "featurize ran again; train's input has the same content, so train is reused"  # fmt: skip
    assert recorded(store, edited["featurize"]).tags["mlflow.parentRunId"] == driver

    mlflow = pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    client = mlflow.tracking.MlflowClient(tracking_uri=Path(store).as_uri())
    train = client.get_run(tuned["train"])
    assert train.data.params["alpha"] == "0.5"
    assert train.data.metrics["rmse"] > 0
    assert train.data.tags["mlflow.parentRunId"] != driver
