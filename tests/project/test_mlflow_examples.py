"""MLflow's own example projects, whose MLproject files use `type: str`, `{type str}` (no colon)
and an int whose default is "auto": mlrun accepts them as MLflow does, with warnings at most."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

EXAMPLES = REPO / "tests" / "fixtures" / "mlflow_examples"
CASES = sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir())

# The arguments each example's script receives with every default (as `mlflow run` passes them).
EXPECTED_ARGS = {
    "bert_news": [
        "--trainer.max_epochs", "5", "--trainer.devices", "auto", "--trainer.strategy", "auto",
        "--trainer.accelerator", "auto", "--data.batch_size", "64", "--data.num_workers", "3",
        "--data.num_samples", "2000", "--model.lr", "0.001", "--data.dataset", "20newsgroups",
    ],
    "hyperparam": ["../../tests/datasets/winequality-white.csv"],
    "iterative_pruning": ["--max_epochs", "3", "--mlflow_run_name", "BaseModel"],
    "multistep_workflow": [
        "--als-max-iter", "10", "--keras-hidden-units", "20", "--max-row-limit", "100000",
    ],
    "sentiment_analysis": [
        "--max-epochs", "5", "--gpus", "0", "--distributed-backend", "None", "--batch-size",
        "64", "--num-workers", "1", "--lr", "1e-3", "--tracking-uri", "http://localhost:5000",
    ],
    "sklearn_elasticnet_wine": ["0.5", "0.1"],
    "torchscript_iris": ["--epochs", "50", "--tracking-uri", "http://localhost:5000"],
    "torchscript_mnist": [
        "--epochs", "5", "--batch-size", "64", "--lr", "1e-3",
        "--tracking-uri", "http://localhost:5000",
    ],
}  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_mlflow_examples_validate_with_warnings_only(cli, tmp_path: Path, case: str) -> None:
    shutil.copytree(EXAMPLES / case, tmp_path / case)
    result = cli("validate", case)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"{case}/MLproject: valid;")
    assert all(line.startswith("mlrun: warning: ") for line in result.stderr.splitlines())


def test_the_mlflow_example_with_type_mistakes_gets_one_warning_per_mistake(cli, tmp_path) -> None:
    shutil.copytree(EXAMPLES / "bert_news", tmp_path / "bert_news")
    warnings = cli("validate", "bert_news").stderr.splitlines()
    assert [w.split(": ")[3] for w in warnings] == [
        "entry_points.main.parameters.devices.default",
        "entry_points.main.parameters.strategy.type str",
        "entry_points.main.parameters.accelerator.type str",
    ]


@pytest.mark.parametrize("case", CASES)
def test_mlflow_examples_run_with_their_defaults(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    shutil.copytree(EXAMPLES / case, tmp_path / case)
    monkeypatch.setenv("ARGS_OUT", str(tmp_path / "args.txt"))
    # `python` in the command is this interpreter
    monkeypatch.setenv(
        "PATH", os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
    )
    result = cli("run", case, "--no-env")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "args.txt").read_text().split("\n") == EXPECTED_ARGS[case]


@pytest.mark.slow
def test_an_env_file_without_python_builds_with_the_current_version(tmp_path: Path) -> None:
    """As MLflow's `_PythonEnv`: a missing `python` is the running interpreter's version, which
    the run records and the env cache is keyed by."""
    import platform

    from tests.conftest import run_mlrun, write_files

    project = write_files(tmp_path / "p", {
        "MLproject": "name: p\npython_env: python_env.yaml\nentry_points:\n  main:\n"
                     "    command: python -c 'import sys; print(sys.version_info[:2])'\n",
        "python_env.yaml": "build_dependencies: [pip]\ndependencies: []\n",
    })  # fmt: skip
    done = run_mlrun("run", str(project), "--env-manager", "uv", cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr
    version = platform.python_version_tuple()
    assert f"({version[0]}, {version[1]})" in done.stdout
    (tag,) = (tmp_path / "mlruns").glob("*/*/tags/mlrun.env.python")
    assert tag.read_text() == platform.python_version()
