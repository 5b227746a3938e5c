"""`mlrun validate`: golden error texts for broken projects, and the happy path."""

from __future__ import annotations

import pytest

from tests.conftest import EXAMPLE, INVALID

CASES = sorted(p.name for p in INVALID.iterdir() if p.is_dir())


@pytest.mark.parametrize("case", CASES)
def test_invalid_projects_report_every_problem_with_its_line(cli, monkeypatch, case) -> None:
    monkeypatch.chdir(INVALID)
    result = cli("validate", case)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (INVALID / case / "expected.txt").read_text()


def test_the_example_project_is_valid(cli, monkeypatch) -> None:
    monkeypatch.chdir(EXAMPLE.parent)
    result = cli("validate", "example_project")
    assert result.exit_code == 0
    assert result.stdout == (
        "example_project/MLproject: valid; entry points: train, infer; "
        "environment: MLproject python_env\n"
    )


def test_validate_defaults_to_the_current_directory(cli, monkeypatch) -> None:
    monkeypatch.chdir(EXAMPLE)
    assert cli("validate").stdout.startswith("MLproject: valid;")


def test_a_directory_without_mlproject_is_valid_and_says_so(cli, make_project) -> None:
    make_project({"train.py": ""})
    result = cli("validate", "project")
    assert result.exit_code == 0
    assert result.stdout.startswith("project (no MLproject): valid; entry points: none")


def test_validate_with_an_unknown_entry_point_lists_the_defined_ones(cli, monkeypatch) -> None:
    monkeypatch.chdir(EXAMPLE.parent)
    result = cli("validate", "example_project", "-e", "evaluate")
    assert result.exit_code == 2
    assert result.stderr == (
        "mlrun: error: entry point 'evaluate' is not defined in MLproject; defined: train, "
        "infer (or name a .py or .sh file of the project)\n"
    )


def test_a_missing_project_directory_is_one_line(cli) -> None:
    result = cli("validate", "nowhere")
    assert result.exit_code == 5
    assert result.stderr.startswith("mlrun: error: nowhere: no such directory")
    assert len(result.stderr.splitlines()) == 1


def test_an_unreadable_mlproject_is_reported_not_raised(cli, make_project) -> None:
    project = make_project({"MLproject": ""})
    (project / "MLproject").write_bytes(b"\xff\xfe\x00bad")
    result = cli("validate", "project")
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "project/MLproject: not a YAML document (not UTF-8 text: byte 0xff at offset 0)"
    )


def test_an_unknown_type_name_is_a_warning_and_runs_as_a_string(cli, make_project) -> None:
    make_project(
        {
            "MLproject": "entry_points:\n  main:\n    parameters:\n"
            "      size: {type: strng, default: big}\n      label: str\n      n: number\n"
            "    command: echo {size} {label} {n}\n"
        }
    )
    result = cli("validate", "project")
    assert result.exit_code == 0
    assert result.stderr.splitlines() == [
        "mlrun: warning: project/MLproject:4: entry_points.main.parameters.size.type: unknown "
        "type 'strng', passed as a string as MLflow does (did you mean 'string'? mlrun checks "
        "string, float, path, uri, int, bool)",
        "mlrun: warning: project/MLproject:6: entry_points.main.parameters.n: unknown type "
        "'number', passed as a string as MLflow does (mlrun checks string, float, path, uri, "
        "int, bool)",
    ]
    ran = cli("run", "project", "--no-env", "-P", "label=a b", "-P", "n=x1")
    assert ran.exit_code == 0, ran.stderr


def test_an_output_role_needs_a_path_parameter(cli, make_project) -> None:
    make_project(
        {
            "MLproject": "entry_points:\n  main:\n    parameters:\n"
            "      out: {type: string, role: output}\n    command: echo {out}\n"
        }
    )
    result = cli("validate", "project")
    assert result.exit_code == 2
    assert "entry_points.main.parameters.out.role: only a 'path' parameter can be an output" in (
        result.stderr
    )


def test_a_docker_volume_whose_host_path_is_missing_is_refused_as_run_refuses_it(
    cli, make_project, tmp_path
) -> None:
    make_project(
        {
            "MLproject": "docker_env:\n  image: busybox\n  volumes:\n"
            "    - 'data:/data'\n    - '/no/such/dir:/in:ro'\n    - 'nonsense'\n"
            "entry_points:\n  main:\n    command: 'true'\n",
            "data/x.txt": "",
        }
    )
    result = cli("validate", "project")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[:2] == [
        "project/MLproject:5: docker_env.volumes[1]: the host path /no/such/dir does not exist",
        "project/MLproject:6: docker_env.volumes[2]: expected HOST:CONTAINER[:ro]",
    ]
    ran = cli("run", "project")  # refused the same way, before any engine is asked
    assert (ran.exit_code, ran.stderr) == (2, result.stderr)
    assert not (tmp_path / "mlruns").exists()


# Each warning kind (line 5 of the MLproject) beside each error kind: both are reported.
_WARNINGS = {
    "unknown type": ("      alpha: flaot\n", "unknown type 'flaot'"),
    "type without colon": ("      alpha: {type float: null}\n", "lacks the colon after 'type'"),
    "default not an int": ("      alpha: {type: int, default: 0.5}\n", "not a valid int"),
}
_ERRORS = {
    "unknown placeholder": ("    command: echo {alpha} {nope}\n", "", "{nope} names no parameter"),
    "unknown key": ("    command: echo {alpha}\n", "colour: red\n", "colour: unknown key"),
    "command not a string": ("    command: [echo]\n", "", "command: expected a string"),
}


@pytest.mark.parametrize("warning", sorted(_WARNINGS))
@pytest.mark.parametrize("error", sorted(_ERRORS))
def test_warnings_are_reported_beside_errors(cli, make_project, warning, error) -> None:
    parameter, warned = _WARNINGS[warning]
    command, top_level, refused = _ERRORS[error]
    mlproject = f"name: t\n{top_level}entry_points:\n  main:\n    parameters:\n{parameter}{command}"
    make_project({"MLproject": mlproject})
    for args in (("validate", "project"), ("run", "project", "--no-env")):
        result = cli(*args)
        assert result.exit_code == 2
        lines = result.stderr.splitlines()
        assert [line for line in lines if warned in line and "warning" in line], result.stderr
        assert [line for line in lines if refused in line], result.stderr
        assert lines[-1].startswith("mlrun: ") and "problem" in lines[-1]


@pytest.mark.parametrize("line", ["python_env:", "python_env: ''", "conda_env:", "docker_env: {}"])
def test_an_empty_environment_key_is_ignored_with_a_warning_as_mlflow_ignores_it(
    cli, make_project, line
) -> None:
    make_project(
        {
            "MLproject": f"name: t\n{line}\nentry_points:\n  main:\n    command: echo hi\n",
            "conda.yaml": "dependencies: [python=3.11]\n",
        }
    )
    result = cli("validate", "project")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.endswith("environment: conda.yaml in the project\n")
    [warning] = result.stderr.splitlines()
    assert warning.startswith(f"mlrun: warning: project/MLproject:2: {line.split(':')[0]}: empty")


@pytest.mark.parametrize("name", ["python_env.yaml", "MLproject"])
def test_a_file_read_as_one_long_string_is_not_echoed_whole(cli, make_project, name) -> None:
    """A wrong file named as the env file (or as MLproject) is one long YAML string: the
    message shows its start, not the whole file."""
    text = "root:x:0:0:root:/root:/bin/bash " * 40
    files = {"MLproject": "entry_points:\n  main:\n    command: echo hi\n", name: text}
    make_project(files)
    result = cli("validate", "project")
    assert result.exit_code == 2
    [problem, summary] = result.stderr.splitlines()
    assert summary == "mlrun: 1 problem found; nothing was run"
    assert problem.startswith(f"project/{name}:1: expected a mapping, got a string ('root:x")
    assert len(problem) < 200 and problem.endswith("...')")
