"""MLproject's environment keys against MLflow's own `load_project`, on generated projects.

Every combination of docker_env / python_env / conda_env values (absent, null, empty, a file,
a missing file, a wrong type) and env files beside the MLproject: mlrun accepts exactly what
MLflow accepts and picks the same environment and file; a refusal names the MLproject line.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import yaml
from mlflow.projects import _project_spec

from mlrun_cli.errors import SpecError
from mlrun_cli.project.spec import load_project

ABSENT = object()
DOCKER = [ABSENT, None, {}, {"image": "python:3.11"}, {"image": ""}, {"volumes": ["/a:/a"]}, "img"]
PYTHON_ENV = [ABSENT, None, "", "declared_python.yaml", "missing.yaml", 3]
CONDA_ENV = [ABSENT, None, "", "declared_conda.yaml", "missing.yaml"]
BESIDE = [(), ("python_env.yaml",), ("conda.yaml",), ("python_env.yaml", "conda.yaml")]


def _mlflow_choice(directory: Path) -> tuple[str, str | None] | None:
    try:
        project = _project_spec.load_project(str(directory))
    except Exception:  # ExecutionException, TypeError ...: any is a refusal
        return None
    path = project.env_config_path
    return project.env_type, Path(path).name if path else None


def _mlrun_choice(directory: Path) -> tuple[str, str | None] | None:
    try:
        project = load_project(directory, directory)
    except SpecError as exc:
        assert all(p.file == "MLproject" and p.line is not None for p in exc.problems), exc
        return None
    env = project.env
    kind = "python_env" if env.kind == "none" else env.kind  # MLflow: python_env, no file
    return kind, env.file.name if env.file is not None else None


def test_environment_keys_are_chosen_as_mlflow_chooses_them(tmp_path: Path) -> None:
    disagreements = []
    combinations = itertools.product(DOCKER, PYTHON_ENV, CONDA_ENV, BESIDE)
    for index, (docker, python_env, conda_env, beside) in enumerate(combinations):
        directory = tmp_path / str(index)
        directory.mkdir()
        fields = {"docker_env": docker, "python_env": python_env, "conda_env": conda_env}
        data: dict[str, Any] = {k: v for k, v in fields.items() if v is not ABSENT}
        data["entry_points"] = {"main": {"command": "echo hi"}}
        (directory / "MLproject").write_text(yaml.safe_dump(data))
        for name in ("declared_python.yaml", "declared_conda.yaml", *beside):
            (directory / name).write_text("dependencies: []\n")
        theirs, ours = _mlflow_choice(directory), _mlrun_choice(directory)
        if theirs != ours:
            disagreements.append(f"{data} beside {beside}: mlflow {theirs}, mlrun {ours}")
    assert not disagreements, "\n".join(disagreements[:40])


VOLUMES = [ABSENT, None, [], ["data:/data"], ["data:/data:ro"], [1], "data:/data"]
ENVIRONMENT = [ABSENT, None, [], ["HOME"], [["SEED", "1"]], [["SEED", 1]], [1], "HOME", [["SEED"]]]


def _mlflow_runs_docker(environment: Any) -> bool:
    """MLflow's docker run reads each `[NAME, value]` item's second element: a shorter list
    passes its loader and fails the run (IndexError), so it counts as refused."""
    items = environment if isinstance(environment, list) else []
    return all(not isinstance(item, list) or len(item) >= 2 for item in items)


def test_docker_env_volumes_and_environment_are_read_as_mlflow_reads_them(tmp_path: Path):
    disagreements = []
    for index, (volumes, environment) in enumerate(itertools.product(VOLUMES, ENVIRONMENT)):
        directory = tmp_path / str(index)
        (directory / "data").mkdir(parents=True)
        fields = {"image": "python:3.11", "volumes": volumes, "environment": environment}
        docker = {k: v for k, v in fields.items() if v is not ABSENT}
        data = {"docker_env": docker, "entry_points": {"main": {"command": "echo hi"}}}
        (directory / "MLproject").write_text(yaml.safe_dump(data))
        theirs = _mlflow_choice(directory) if _mlflow_runs_docker(environment) else None
        ours = _mlrun_choice(directory)
        if theirs != ours:
            disagreements.append(f"{docker}: mlflow {theirs}, mlrun {ours}")
    assert not disagreements, "\n".join(disagreements)
