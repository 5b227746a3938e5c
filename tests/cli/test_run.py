"""`mlrun run` in-process: what is recorded, what is refused, and the exit codes."""

from __future__ import annotations

import json
import os
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest

from mlrun_cli.tracking.file_store import FileStore

ECHO_PROJECT = {
    "MLproject": """
name: echo
entry_points:
  main:
    parameters:
      word: {type: string, default: hello}
      ratio: {type: float, default: 0.5}
      data: {type: path, default: data.txt}
    command: "echo {word} {ratio} && cat {data} && echo"
  fail:
    parameters:
      code: {type: int, default: 3}
    command: "echo failing >&2; exit {code}"
  env:
    command: "env | grep ^MLFLOW_ | sort"
""",
    "data.txt": "payload\n",
}


def run_json(cli, *args: str) -> dict:
    result = cli("run", *args, "--json")
    document = json.loads(result.stdout)
    assert document["format"] == 1
    return document["run"]


def read_run(tmp_path: Path, run_id: str, store: str = "mlruns"):
    return FileStore(tmp_path / store).read_run(run_id)


def test_a_passing_run_is_recorded_with_params_tags_and_logs(cli, make_project, tmp_path) -> None:
    project = make_project(ECHO_PROJECT)
    run = run_json(cli, "project", "-P", "word=hi there", "--run-name", "first")
    assert (run["status"], run["exit_code"], run["run_name"]) == ("FINISHED", 0, "first")
    info, params, tags = read_run(tmp_path, run["run_id"])
    assert info.experiment_id == "0"
    assert params == {"word": "hi there", "ratio": "0.5", "data": str(project / "data.txt")}
    assert tags["mlflow.source.name"] == str(project)
    assert tags["mlflow.source.type"] == "PROJECT"
    assert tags["mlflow.project.entryPoint"] == "main"
    assert tags["mlflow.project.env"] == "local"
    assert tags["mlflow.project.backend"] == "local"
    assert tags["mlflow.runName"] == "first"
    assert tags["mlrun.command"] == f"echo 'hi there' 0.5 && cat {project / 'data.txt'} && echo"
    assert tags["mlrun.exit_code"] == "0"
    assert float(tags["mlrun.duration_s"]) >= 0
    for key in ("mlflow.user", "mlrun.host", "mlrun.version", "mlrun.platform"):
        assert tags[key]
    stdout_log = Path(run["logs"]["stdout"]).read_text()
    assert stdout_log == "hi there 0.5\npayload\n\n"


def test_the_entry_points_output_reaches_the_terminal(cli, make_project) -> None:
    make_project(ECHO_PROJECT)
    result = cli("run", "project", "-e", "fail")
    assert result.stdout == ""
    assert "failing\n" in result.stderr


def test_a_failing_entry_point_fails_the_run_with_its_own_exit_code(
    cli, make_project, tmp_path
) -> None:
    make_project(ECHO_PROJECT)
    result = cli("run", "project", "-e", "fail", "-P", "code=7", "--json")
    assert result.exit_code == 7
    run = json.loads(result.stdout)["run"]
    assert (run["status"], run["exit_code"]) == ("FAILED", 7)
    _info, _, tags = read_run(tmp_path, run["run_id"])
    assert tags["mlrun.exit_code"] == "7"
    assert Path(run["logs"]["stderr"]).read_text() == "failing\n"
    assert f"run {run['run_id']} FAILED" in result.stderr


def test_json_keeps_stdout_for_the_document_alone(cli, make_project) -> None:
    make_project(ECHO_PROJECT)
    result = cli("run", "project", "--json")
    assert json.loads(result.stdout)["run"]["status"] == "FINISHED"
    assert "hello 0.5" in result.stderr


def test_the_child_attaches_to_the_run_through_mlflow_variables(
    cli, make_project, tmp_path
) -> None:
    make_project(ECHO_PROJECT)
    run = run_json(cli, "project", "-e", "env", "--experiment-name", "exp")
    lines = Path(run["logs"]["stdout"]).read_text().splitlines()
    assert f"MLFLOW_RUN_ID={run['run_id']}" in lines
    assert f"MLFLOW_EXPERIMENT_ID={run['experiment_id']}" in lines
    assert f"MLFLOW_TRACKING_URI={(tmp_path / 'mlruns').as_uri()}" in lines
    assert "MLFLOW_ALLOW_FILE_STORE=true" in lines


def test_a_shell_injection_in_a_value_runs_nothing(cli, make_project, tmp_path) -> None:
    make_project(ECHO_PROJECT)
    target = tmp_path / "pwned"
    run = run_json(
        cli, "project", "-P", f"word=x; touch {target}", "-P", f"extra=$(touch {target})"
    )
    assert run["status"] == "FINISHED"
    assert not target.exists()
    output = Path(run["logs"]["stdout"]).read_text()
    assert output == f"x; touch {target} 0.5\npayload\n--extra $(touch {target})\n"


def test_bare_python_and_shell_entry_points(cli, make_project) -> None:
    make_project(
        {
            "train.py": "import sys; print('py', sys.argv[1:])",
            "run.sh": 'echo "sh $@"',
        }
    )
    py = run_json(cli, "project", "-e", "train.py", "-P", "lr=0.1", "-P", "name=a b")
    assert Path(py["logs"]["stdout"]).read_text() == "py ['--lr', '0.1', '--name', 'a b']\n"
    sh = run_json(cli, "project", "-e", "run.sh", "-P", "n=1")
    assert Path(sh["logs"]["stdout"]).read_text() == "sh --n 1\n"


def test_experiment_by_name_is_created_and_by_id_must_exist(cli, make_project, tmp_path) -> None:
    make_project(ECHO_PROJECT)
    run = run_json(cli, "project", "--experiment-name", "new-exp")
    assert run["experiment_name"] == "new-exp"
    again = run_json(cli, "project", "--experiment-id", run["experiment_id"])
    assert again["experiment_name"] == "new-exp"
    missing = cli("run", "project", "--experiment-id", "999")
    assert missing.exit_code == 2
    assert missing.stderr == f"mlrun: error: no experiment with id 999 in {tmp_path / 'mlruns'}\n"


def test_experiment_from_the_environment(cli, make_project, monkeypatch) -> None:
    make_project(ECHO_PROJECT)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "from-env")
    assert run_json(cli, "project")["experiment_name"] == "from-env"
    experiment_id = run_json(cli, "project")["experiment_id"]
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", experiment_id)
    assert run_json(cli, "project")["experiment_name"] == "from-env"


BAD_INPUTS = [
    (["-P", "word"], 2, "mlrun: error: -P 'word': expected NAME=VALUE\n"),
    (["-P", "ratio=fast"], 2, "mlrun: error: parameter 'ratio' (float): 'fast' is not a number\n"),
    (
        ["-e", "fail", "-P", "code=x"],
        2,
        "mlrun: error: parameter 'code' (int): 'x' is not an integer\n",
    ),
    (
        ["-e", "nope"],
        2,
        "mlrun: error: entry point 'nope' is not defined in MLproject; "
        "defined: main, fail, env (or name a .py or .sh file of the project)\n",
    ),
    (
        ["--env-manager", "docker"],
        2,
        "mlrun: error: --env-manager docker needs a docker_env in MLproject\n",
    ),
    (
        ["--experiment-name", "a", "--experiment-id", "0"],
        2,
        "mlrun: error: pass --experiment-name or --experiment-id, not both\n",
    ),
    (
        ["--no-env", "--env-manager", "conda"],
        2,
        "mlrun: error: --no-env contradicts --env-manager conda\n",
    ),
    (
        ["--version", "v1"],
        5,
        "mlrun: error: project: --version needs a git repository, and this is none\n",
    ),
]


@pytest.mark.parametrize(("args", "code", "message"), BAD_INPUTS)
def test_bad_input_is_one_line_and_writes_nothing(
    cli, make_project, tmp_path, args, code, message
) -> None:
    make_project(ECHO_PROJECT)
    result = cli("run", "project", *args)
    assert (result.exit_code, result.stderr) == (code, message)
    assert not (tmp_path / "mlruns").exists()


def test_a_missing_path_parameter_names_the_parameter(cli, make_project, tmp_path) -> None:
    make_project(ECHO_PROJECT)
    result = cli("run", "project", "-P", "data=nowhere/x.txt")
    assert result.exit_code == 2
    assert result.stderr == (
        "mlrun: error: parameter 'data' (path): no such file or directory: "
        f"{tmp_path / 'nowhere/x.txt'}\n"
    )
    assert not (tmp_path / "mlruns").exists()


def test_a_broken_mlproject_stops_before_anything_is_written(cli, make_project, tmp_path) -> None:
    make_project({"MLproject": "entry_points:\n  main:\n    command: [x\n"})
    result = cli("run", "project")
    assert result.exit_code == 2
    assert result.stderr.startswith("project/MLproject:")
    assert not (tmp_path / "mlruns").exists()


def test_a_named_entry_point_without_mlproject(cli, make_project, tmp_path) -> None:
    make_project({"train.py": ""})
    result = cli("run", "project", "-e", "train")
    assert result.exit_code == 2
    assert result.stderr == (
        "mlrun: error: entry point 'train' is not defined in the project (no MLproject file); "
        "defined: none (or name a .py or .sh file of the project)\n"
    )
    assert not (tmp_path / "mlruns").exists()


def test_an_uninstalled_python_is_refused_before_the_run(cli, make_project, tmp_path) -> None:
    make_project({**ECHO_PROJECT, "python_env.yaml": "python: '3.99'\n"})
    result = cli("run", "project")
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "mlrun: error: no installed Python matches python: '3.99' (installed: "
    )
    assert not (tmp_path / "mlruns").exists()
    assert not (tmp_path / "envs").exists()
    assert cli("run", "project", "--no-env").exit_code == 0
    assert cli("run", "project", "--env-manager", "local").exit_code == 0


def test_a_broken_python_env_file_is_located(cli, make_project, tmp_path) -> None:
    make_project({**ECHO_PROJECT, "python_env.yaml": "python: 3.10\n"})
    result = cli("run", "project")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == (
        'project/python_env.yaml:1: python: write the version in quotes: python: "3.10"'
    )
    assert not (tmp_path / "mlruns").exists()


def test_a_docker_env_project_without_an_engine_is_one_line(
    cli, make_project, tmp_path, monkeypatch
) -> None:
    make_project(
        {**ECHO_PROJECT, "MLproject": "docker_env: {image: busybox}\n" + ECHO_PROJECT["MLproject"]}
    )
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    result = cli("run", "project")
    assert result.exit_code == 2
    assert result.stderr.startswith(
        f"mlrun: error: no Docker engine reachable at unix://{tmp_path}/no-engine.sock ("
    )
    assert len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "mlruns").exists()
    assert cli("run", "project", "--no-env").exit_code == 0


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        (
            "https://127.0.0.1:9/org/repo.git",
            "https://127.0.0.1:9/org/repo.git: cannot reach the repository: fatal: ",
        ),
        ("proj.zip", "proj.zip: no such archive"),
        ("project#sub", "project#sub: no directory 'sub' in the project"),
        ("project#../..", "project#../..: the subdirectory '../..' leaves the project"),
    ],
)
def test_source_problems_are_one_line(cli, make_project, tmp_path, uri, message) -> None:
    make_project(ECHO_PROJECT)
    result = cli("run", uri)
    assert result.exit_code == 5
    assert result.stderr.startswith(f"mlrun: error: {message}")
    assert len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "mlruns").exists()


def test_a_store_path_that_is_a_file_is_untouched(cli, make_project, tmp_path) -> None:
    make_project(ECHO_PROJECT)
    (tmp_path / "store").write_text("keep me")
    result = cli("run", "project", "--tracking-uri", "store")
    assert (result.exit_code, result.stderr) == (
        4,
        f"mlrun: error: tracking store {tmp_path / 'store'} is a file, not a directory\n",
    )
    assert (tmp_path / "store").read_text() == "keep me"


def test_a_store_that_cannot_be_written(cli, make_project, tmp_path) -> None:
    make_project(ECHO_PROJECT)
    (tmp_path / "file").write_text("")
    result = cli("run", "project", "--tracking-uri", "file/mlruns")
    assert result.exit_code == 4
    assert result.stderr.startswith(
        f"mlrun: error: tracking store {tmp_path / 'file/mlruns'} is not writable"
    )


def test_a_command_that_cannot_start_fails_the_run_instead_of_leaving_it_running(
    cli, make_project, tmp_path, monkeypatch
) -> None:
    make_project(ECHO_PROJECT)
    monkeypatch.setenv("PATH", str(tmp_path / "no-such-bin"))
    result = cli("run", "project")
    assert (result.exit_code, result.stderr.splitlines()[-1]) == (
        1,
        "mlrun: error: cannot start 'bash': No such file or directory",
    )
    [meta] = (tmp_path / "mlruns" / "0").glob("*/meta.yaml")
    info, _, _ = read_run(tmp_path, meta.parent.name)
    assert info.status.name == "FAILED"


def test_a_new_experiment_name_says_it_created_one(cli, make_project) -> None:
    make_project(ECHO_PROJECT)
    first = cli("run", "project", "--experiment-name", "trian")
    assert first.stderr.startswith("mlrun: created experiment 'trian' (id ")
    again = cli("run", "project", "--experiment-name", "trian")
    assert "created experiment" not in again.stderr


def test_the_summary_line_gives_the_entry_point_and_the_total_time(cli, make_project) -> None:
    make_project(ECHO_PROJECT)
    summary = cli("run", "project").stderr.splitlines()[-1]
    assert re.fullmatch(
        r"mlrun: run [0-9a-f]{32} FINISHED: entry point \d+\.\d\ds, total \d+\.\d\ds with the "
        r"environment \(exit code 0\)",
        summary,
    )


def test_a_local_run_records_the_interpreters_packages(
    cli, make_project, tmp_path, monkeypatch
) -> None:
    """`python` is this interpreter here (read in-process), a pyenv shim or another Python
    elsewhere (asked for its sys.path): either way its packages are recorded."""
    make_project(ECHO_PROJECT)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    run = run_json(cli, "project", "--no-env")
    artifacts = tmp_path / "mlruns" / "0" / run["run_id"] / "artifacts"
    lock = (artifacts / "environment" / "requirements.lock.txt").read_text().splitlines()
    assert f"click=={metadata.version('click')}" in lock
    assert lock == sorted(lock, key=str.lower)
