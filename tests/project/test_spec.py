"""Loading an MLproject into the model: MLflow's reading rules, mlrun's stricter checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlrun_cli.errors import EntryPointError, SpecError
from mlrun_cli.project.spec import Parameter, load_project, select_entry_point
from tests.conftest import EXAMPLE


def test_example_project_loads_with_its_entry_points_and_env() -> None:
    project = load_project(EXAMPLE)
    assert project.name == "iris"
    assert list(project.entry_points) == ["train", "infer"]
    assert project.env.kind == "python_env"
    assert project.env.file == EXAMPLE / "python_env.yaml"
    train = project.entry_points["train"]
    assert [p.name for p in train.parameters] == ["input_file", "output_file", "alpha"]
    assert train.parameters[0] == Parameter("input_file", "path", "data/iris.csv")


def test_defaults_become_strings_exactly_as_mlflow_reads_yaml_1_1(make_project) -> None:
    project = load_project(
        make_project(
            {
                "MLproject": """
entry_points:
  main:
    parameters:
      sci: {type: string, default: 1e-1}
      ratio: {type: float, default: 0.10}
      flag: {type: string, default: yes}
      count: {type: int, default: 3}
      shorthand: float
      untyped: {default: x}
    command: "echo {sci} {ratio} {flag} {count} {shorthand} {untyped}"
"""
            }
        )
    )
    params = {p.name: p for p in project.entry_points["main"].parameters}
    assert params["sci"].default == "1e-1"
    assert params["ratio"].default == "0.1"
    assert params["flag"].default == "True"
    assert params["count"].default == "3"
    assert params["shorthand"] == Parameter("shorthand", "float", None)
    assert params["shorthand"].required
    assert params["untyped"] == Parameter("untyped", "string", "x")


def test_mlproject_file_name_is_matched_case_insensitively(make_project) -> None:
    project = load_project(make_project({"mlproject": "entry_points:\n  main:\n    command: x\n"}))
    assert list(project.entry_points) == ["main"]


def test_empty_mlproject_is_a_project_without_entry_points(make_project) -> None:
    assert load_project(make_project({"MLproject": ""})).entry_points == {}


@pytest.mark.parametrize(
    ("files", "kind", "file_name"),
    [
        (
            {"MLproject": "docker_env: {image: busybox}\n", "python_env.yaml": "x: 1"},
            "docker_env",
            None,
        ),
        (
            {"MLproject": "python_env: env.yaml\n", "env.yaml": "", "conda.yaml": ""},
            "python_env",
            "env.yaml",
        ),
        (
            {"MLproject": "conda_env: c.yaml\n", "c.yaml": "", "python_env.yaml": ""},
            "conda_env",
            "c.yaml",
        ),
        (
            {"MLproject": "name: x\n", "python_env.yaml": "", "conda.yaml": ""},
            "python_env",
            "python_env.yaml",
        ),
        ({"MLproject": "name: x\n", "conda.yaml": ""}, "conda_env", "conda.yaml"),
        ({"MLproject": "name: x\n"}, "none", None),
        ({"train.py": ""}, "none", None),
    ],
)
def test_environment_precedence_follows_design(make_project, files, kind, file_name) -> None:
    project_dir = make_project(files)
    env = load_project(project_dir).env
    assert env.kind == kind
    assert env.file == (project_dir / file_name if file_name else None)


def test_docker_env_environment_items_copy_or_set(make_project) -> None:
    project = load_project(
        make_project(
            {
                "MLproject": """
docker_env:
  image: busybox
  volumes: ["/tmp:/tmp"]
  environment: [HOME, [MODE, fast], [PORT, 8080]]
"""
            }
        )
    )
    docker = project.env.docker
    assert docker is not None
    assert docker.image == "busybox"
    assert docker.volumes == ("/tmp:/tmp",)
    assert docker.environment == (("HOME", None), ("MODE", "fast"), ("PORT", "8080"))


def test_bare_python_and_shell_files_are_entry_points(make_project) -> None:
    project = load_project(make_project({"train.py": "", "run me.sh": ""}))
    assert select_entry_point(project, "train.py").command == "python train.py"
    assert select_entry_point(project, "run me.sh").command == "bash 'run me.sh'"


def test_unknown_entry_point_lists_the_defined_ones(make_project) -> None:
    project = load_project(
        make_project({"MLproject": "entry_points:\n  a: {command: x}\n  b: {command: y}\n"})
    )
    with pytest.raises(EntryPointError, match=r"'nope' is not defined in MLproject; defined: a, b"):
        select_entry_point(project, "nope")
    with pytest.raises(EntryPointError, match="no such file"):
        select_entry_point(project, "missing.py")


def test_every_problem_is_reported_at_once_sorted_by_line(make_project) -> None:
    with pytest.raises(SpecError) as caught:
        load_project(
            make_project(
                {
                    "MLproject": """
colour: blue
entry_points:
  train:
    parameters:
      alpha: {type: float, default: x}
    command: "python train.py {beta}"
"""
                }
            ),
            display_base=Path("/"),
        )
    lines = [p.line for p in caught.value.problems]
    assert lines == sorted(lines)
    assert len(caught.value.problems) == 3
