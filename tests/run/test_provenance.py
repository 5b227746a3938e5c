"""Provenance: git changes, input digests, the run record, and secrets kept out of the store."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from mlrun_cli.run.provenance import digest_path
from mlrun_cli.tracking.file_store import FileStore
from tests.gitrepos import git, make_repo

PROJECT = {
    "MLproject": """
entry_points:
  main:
    parameters:
      data: {type: path, default: data}
      table: {type: path, default: data/iris.csv}
    command: "cat {table} | wc -l"
  secret:
    parameters:
      api_token: string
      db_password: {type: string, default: hunter2-default}
      plain: {type: string, default: visible}
    command: "echo token is {api_token}; echo {db_password} > $OUT_FILE; echo {plain}"
""",
    "train.py": "print('training')\n",
    "data/iris.csv": "a,b\n1,2\n",
    "data/more/readme.txt": "notes\n",
}


def run_json(cli, *args: str) -> dict:
    result = cli("run", *args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["run"]


def stored(tmp_path: Path, run: dict):
    _info, params, tags = FileStore(tmp_path / "mlruns").read_run(run["run_id"])
    artifacts = tmp_path / "mlruns" / run["experiment_id"] / run["run_id"] / "artifacts"
    return params, tags, artifacts


def test_a_dirty_tree_records_the_edit_and_the_untracked_file(cli, tmp_path) -> None:
    repo = make_repo(tmp_path / "repo", PROJECT)
    (repo / "train.py").write_text("print('training, edited')\n")
    (repo / "notes.txt").write_text("new\n")
    run = run_json(cli, "repo")
    _, tags, artifacts = stored(tmp_path, run)
    assert tags["mlflow.source.git.dirty"] == "true"
    assert tags["mlflow.source.git.commit"] == git(repo, "rev-parse", "HEAD")
    diff = (artifacts / "provenance" / "git.diff").read_text()
    assert "+print('training, edited')" in diff
    assert "-print('training')" in diff
    assert "# untracked files:\n#   notes.txt\n" in diff
    assert tags["mlflow.source.git.diff"] == diff


def test_a_long_diff_is_pointed_to_not_copied_into_the_tag(cli, tmp_path) -> None:
    repo = make_repo(tmp_path / "repo", PROJECT)
    (repo / "train.py").write_text("x = 1\n" * 3000)
    run = run_json(cli, "repo")
    _, tags, artifacts = stored(tmp_path, run)
    length = len((artifacts / "provenance" / "git.diff").read_text())
    assert length > 8000
    assert tags["mlflow.source.git.diff"] == (
        f"the diff has {length} characters; see the artifact provenance/git.diff"
    )


def test_a_clean_tree_is_not_dirty_and_has_no_diff(cli, tmp_path) -> None:
    make_repo(tmp_path / "repo", PROJECT)
    run = run_json(cli, "repo")
    _, tags, artifacts = stored(tmp_path, run)
    assert tags["mlflow.source.git.dirty"] == "false"
    assert "mlflow.source.git.diff" not in tags
    assert not (artifacts / "provenance" / "git.diff").exists()


def test_require_clean_refuses_a_dirty_tree_and_records_nothing(cli, tmp_path) -> None:
    repo = make_repo(tmp_path / "repo", PROJECT)
    (repo / "notes.txt").write_text("new\n")
    result = cli("run", "repo", "--require-clean")
    assert (result.exit_code, result.stderr) == (
        2,
        f"mlrun: error: {repo} has uncommitted changes (1 files); commit or stash them, "
        "or drop --require-clean\n",
    )
    assert not (tmp_path / "mlruns").exists()
    (repo / "notes.txt").unlink()
    assert cli("run", "repo", "--require-clean").exit_code == 0


def test_a_project_outside_git_has_no_git_tags(cli, make_project, tmp_path) -> None:
    make_project(PROJECT)
    run = run_json(cli, "project")
    _, tags, _ = stored(tmp_path, run)
    assert not [key for key in tags if "git" in key.lower()]
    assert tags["mlflow.source.name"] == str(tmp_path / "project")


def test_without_a_git_binary_the_run_warns_once_and_goes_on(cli, tmp_path, monkeypatch) -> None:
    make_repo(tmp_path / "repo", PROJECT)
    tools = tmp_path / "tools"
    tools.mkdir()
    for tool in ("bash", "cat", "wc"):
        (tools / tool).symlink_to(shutil.which(tool))
    monkeypatch.setenv("PATH", str(tools))
    result = cli("run", "repo", "--no-env")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.count("mlrun: warning: git is not installed") == 1


def test_input_digests_are_tagged_listed_and_offered_to_mlflow(
    cli, make_project, tmp_path, monkeypatch
) -> None:
    project = make_project(PROJECT)
    before = os.stat(project / "data" / "iris.csv").st_mtime_ns
    run = run_json(cli, "project")
    _, tags, artifacts = stored(tmp_path, run)
    file_sha = hashlib.sha256(b"a,b\n1,2\n").hexdigest()
    assert tags["mlrun.input.table.digest"] == file_sha
    assert tags["mlrun.input.data.digest"] == digest_path(project / "data")[0]
    inputs = json.loads((artifacts / "provenance" / "inputs.json").read_text())
    assert inputs["format"] == 1
    by_name = {i["name"]: i for i in inputs["inputs"]}
    assert by_name["table"] == {
        "name": "table",
        "path": str(project / "data" / "iris.csv"),
        "kind": "file",
        "sha256": file_sha,
        "size": 8,
        "files": 1,
    }
    assert (by_name["data"]["kind"], by_name["data"]["files"], by_name["data"]["size"]) == (
        "directory",
        2,
        14,
    )
    assert os.stat(project / "data" / "iris.csv").st_mtime_ns == before

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=(tmp_path / "mlruns").as_uri())
    datasets = {d.dataset.name: d for d in client.get_run(run["run_id"]).inputs.dataset_inputs}
    assert set(datasets) == {"iris.csv", "data"}
    assert datasets["iris.csv"].dataset.digest == file_sha[:32]
    assert {t.key: t.value for t in datasets["iris.csv"].tags} == {"mlflow.data.context": "table"}


def test_digests_follow_content_not_place_or_time(cli, make_project, tmp_path) -> None:
    project = make_project(PROJECT)
    copy = tmp_path / "elsewhere"
    shutil.copytree(project / "data", copy)
    os.utime(copy / "iris.csv", (1, 1))
    assert digest_path(copy) == digest_path(project / "data")
    first = stored(tmp_path, run_json(cli, "project"))[1]["mlrun.input.table.digest"]
    second = stored(tmp_path, run_json(cli, "project"))[1]["mlrun.input.table.digest"]
    (project / "data" / "iris.csv").write_text("a,b\n1,3\n")
    edited = stored(tmp_path, run_json(cli, "project"))[1]["mlrun.input.table.digest"]
    assert first == second != edited


def test_no_digest_skips_hashing(cli, make_project, tmp_path) -> None:
    make_project(PROJECT)
    _, tags, artifacts = stored(tmp_path, run_json(cli, "project", "--no-digest"))
    assert not [key for key in tags if key.startswith("mlrun.input.")]
    assert not (artifacts / "provenance" / "inputs.json").exists()


def test_secrets_reach_the_command_but_never_the_store(
    cli, make_project, tmp_path, monkeypatch
) -> None:
    make_project(PROJECT)
    received = tmp_path / "received.txt"
    monkeypatch.setenv("OUT_FILE", str(received))
    token, custom = "tok-3f9a1c", "my-own-secret-77"
    run = run_json(
        cli,
        "project",
        "-e",
        "secret",
        "-P",
        f"api_token={token}",
        "-P",
        f"db_password={custom}",
        "-P",
        "plain=shown",
        "-P",
        f"extra_key={custom}x",
    )
    assert received.read_text() == f"{custom}\n"  # the command got the real value
    params, tags, artifacts = stored(tmp_path, run)
    assert params == {
        "api_token": "***",
        "db_password": "***",
        "plain": "shown",
        "extra_key": "***",
    }
    assert "***" in tags["mlrun.command"] and token not in tags["mlrun.command"]
    assert (artifacts / "logs" / "stdout.log").read_text().startswith("token is ***\n")
    for path in (tmp_path / "mlruns").rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert token.encode() not in content, path
            assert custom.encode() not in content, path


def test_secret_param_masks_any_name(cli, make_project, tmp_path) -> None:
    make_project(PROJECT)
    run = run_json(
        cli,
        "project",
        "-e",
        "secret",
        "-P",
        "api_token=t",
        "-P",
        "plain=private-words",
        "--secret-param",
        "plain",
    )
    params, _tags, artifacts = stored(tmp_path, run)
    assert params["plain"] == "***"
    assert "private-words" not in (artifacts / "provenance" / "run.json").read_text()


def test_the_run_record_is_complete_and_versioned(cli, tmp_path) -> None:
    repo = make_repo(tmp_path / "repo", PROJECT)
    run = run_json(cli, "repo", "-e", "secret", "-P", "api_token=t0k")
    _, tags, artifacts = stored(tmp_path, run)
    record = json.loads((artifacts / "provenance" / "run.json").read_text())
    assert record["format"] == 1
    assert record["source"]["uri"] == "repo"
    assert record["source"]["commit"] == git(repo, "rev-parse", "HEAD")
    assert record["source"]["dirty"] is False
    assert record["entry_point"] == "secret"
    assert {
        "name": "api_token",
        "type": "string",
        "value": "***",
        "from_default": False,
        "role": "input",
    } in record["parameters"]
    assert {
        "name": "plain",
        "type": "string",
        "value": "visible",
        "from_default": True,
        "role": "input",
    } in record["parameters"]
    assert record["command"] == tags["mlrun.command"]
    assert record["environment"]["manager"] == "local"
    assert set(record["host"]) == {"hostname", "os", "cpu_count", "python"}
    assert record["run"]["status"] == "FINISHED" and record["run"]["exit_code"] == 0
    assert record["run"]["end_time"] >= record["run"]["start_time"]


def test_outputs_are_digested_after_the_run_not_before(cli, make_project, tmp_path) -> None:
    make_project(
        {
            "MLproject": """
entry_points:
  main:
    parameters:
      data: {type: path, default: data.csv}
      output_file: {type: path, default: out/predictions.csv}
      model: {type: path, role: output, default: model.bin}
    command: "cat {data} > {output_file}; echo trained > {model}"
""",
            "data.csv": "a\n1\n",
            "out/.keep": "",
            "model.bin": "last week's model\n",
        }
    )
    run = run_json(cli, "project")
    _, tags, artifacts = stored(tmp_path, run)
    inputs = json.loads((artifacts / "provenance" / "inputs.json").read_text())["inputs"]
    assert [i["name"] for i in inputs] == ["data"]  # not the outputs, existing or not
    assert not any(key.startswith(("mlrun.input.output_file", "mlrun.input.model")) for key in tags)
    outputs = json.loads((artifacts / "provenance" / "outputs.json").read_text())["outputs"]
    assert {o["name"]: o["sha256"] for o in outputs} == {
        "output_file": hashlib.sha256(b"a\n1\n").hexdigest(),
        "model": hashlib.sha256(b"trained\n").hexdigest(),
    }
    assert tags["mlrun.output.model.digest"] == hashlib.sha256(b"trained\n").hexdigest()
    record = json.loads((artifacts / "provenance" / "run.json").read_text())
    assert {p["name"]: p["role"] for p in record["parameters"]} == {
        "data": "input",
        "output_file": "output",
        "model": "output",
    }
