"""`mlrun experiments ...` through the CLI: exact messages and exit codes."""

from __future__ import annotations

import json

from tests.servers import free_port


def create(cli, name: str) -> str:
    result = cli("experiments", "create", "--experiment-name", name)
    assert result.exit_code == 0, result.stderr
    return result.stdout.split()[-1]


def test_create_then_list(cli, tmp_path) -> None:
    result = cli("experiments", "create", "--experiment-name", "iris")
    experiment_id = result.stdout.split()[-1]
    assert result.stdout == f"Created experiment 'iris' with id {experiment_id}\n"
    listed = cli("experiments", "list")
    assert listed.exit_code == 0
    lines = listed.stdout.splitlines()
    assert lines[0].split() == [
        "EXPERIMENT",
        "ID",
        "NAME",
        "STAGE",
        "CREATED",
        "ARTIFACT",
        "LOCATION",
    ]
    assert lines[1].split()[:3] == ["0", "Default", "active"]
    assert lines[2].split()[:3] == [experiment_id, "iris", "active"]
    assert lines[2].split()[-1] == (tmp_path / "mlruns" / experiment_id).as_uri()


def test_list_json_is_a_versioned_envelope(cli) -> None:
    experiment_id = create(cli, "iris")
    document = json.loads(cli("experiments", "list", "--json").stdout)
    assert document["format"] == 1
    assert [(e["experiment_id"], e["name"]) for e in document["experiments"]] == [
        ("0", "Default"),
        (experiment_id, "iris"),
    ]
    assert set(document["experiments"][1]) == {
        "experiment_id",
        "name",
        "artifact_location",
        "lifecycle_stage",
        "creation_time",
        "last_update_time",
        "tags",
    }


def test_listing_a_store_that_does_not_exist_creates_nothing(cli, tmp_path) -> None:
    result = cli("experiments", "list")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[1:] == []
    assert not (tmp_path / "mlruns").exists()


def test_duplicate_names_are_a_one_line_error(cli) -> None:
    experiment_id = create(cli, "iris")
    result = cli("experiments", "create", "--experiment-name", "iris")
    assert result.exit_code == 2
    assert result.stderr == f"mlrun: error: experiment 'iris' already exists (id {experiment_id})\n"


def test_rename_delete_restore_by_name_or_id(cli) -> None:
    experiment_id = create(cli, "iris")
    renamed = cli("experiments", "rename", "--experiment-name", "iris", "--new-name", "flowers")
    assert renamed.stdout == f"Renamed experiment {experiment_id} to 'flowers'\n"
    deleted = cli("experiments", "delete", "--experiment-id", experiment_id)
    assert deleted.stdout == f"Experiment with id {experiment_id} has been deleted.\n"
    assert "flowers" not in cli("experiments", "list").stdout
    assert "flowers" in cli("experiments", "list", "--view", "deleted_only").stdout
    restored = cli("experiments", "restore", "--experiment-name", "flowers")
    assert restored.stdout == f"Experiment with id {experiment_id} has been restored.\n"
    assert "flowers" in cli("experiments", "list").stdout


def test_unknown_ids_and_names_are_one_line_errors(cli, tmp_path) -> None:
    create(cli, "iris")
    store = tmp_path / "mlruns"
    result = cli("experiments", "delete", "--experiment-id", "12345")
    assert (result.exit_code, result.stderr) == (
        2,
        f"mlrun: error: no experiment with id 12345 in {store}\n",
    )
    result = cli("experiments", "describe", "--experiment-name", "nope")
    assert (result.exit_code, result.stderr) == (
        2,
        f"mlrun: error: no experiment named 'nope' in {store}\n",
    )


def test_an_experiment_must_be_named_exactly_once(cli) -> None:
    create(cli, "iris")
    result = cli("experiments", "describe")
    assert result.exit_code == 2
    assert "--experiment-id or --experiment-name" in result.stderr
    both = cli("experiments", "describe", "--experiment-id", "0", "--experiment-name", "iris")
    assert both.exit_code == 2


def test_describe_shows_fields_and_run_counts(cli, make_project) -> None:
    make_project(
        {"MLproject": "entry_points:\n  ok: {command: 'true'}\n  bad: {command: 'false'}\n"}
    )
    experiment_id = create(cli, "iris")
    for entry in ("ok", "ok", "bad"):
        cli("run", "project", "-e", entry, "--experiment-name", "iris")
    text = cli("experiments", "describe", "--experiment-name", "iris").stdout
    assert f"experiment_id: {experiment_id}\nname: iris\nlifecycle_stage: active\n" in text
    assert "runs: FAILED 1, FINISHED 2\n" in text
    document = json.loads(cli("experiments", "describe", "-x", experiment_id, "--json").stdout)
    assert document["experiment"]["runs"] == {"FAILED": 1, "FINISHED": 2}


def test_the_default_experiment_cannot_be_deleted(cli) -> None:
    create(cli, "iris")
    result = cli("experiments", "delete", "--experiment-id", "0")
    assert (result.exit_code, result.stderr) == (
        2,
        "mlrun: error: the Default experiment (id 0) cannot be deleted\n",
    )


def test_tracking_uri_option_and_environment_variable(cli, tmp_path, monkeypatch) -> None:
    cli("experiments", "create", "--experiment-name", "a", "--tracking-uri", "store-a")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "store-b").as_uri())
    cli("experiments", "create", "--experiment-name", "b")
    assert (tmp_path / "store-a" / "0" / "meta.yaml").is_file()
    assert (tmp_path / "store-b" / "0" / "meta.yaml").is_file()
    assert " b " in cli("experiments", "list").stdout
    assert " a " in cli("experiments", "list", "--tracking-uri", "store-a").stdout


def test_unsupported_tracking_schemes_are_refused(cli) -> None:
    result = cli("experiments", "list", "--tracking-uri", "ftp://localhost/mlruns")
    assert result.exit_code == 4
    assert "scheme 'ftp' is not supported" in result.stderr


def test_an_unreachable_server_is_one_line_and_exit_4(cli, monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    uri = f"http://127.0.0.1:{free_port()}"
    result = cli("experiments", "list", "--tracking-uri", uri)
    assert (result.exit_code, result.stderr.count("\n")) == (4, 1)
    assert result.stderr.startswith(f"mlrun: error: tracking server {uri} is unreachable (")


def test_an_empty_name_is_refused_before_the_store_exists(cli, tmp_path) -> None:
    result = cli("experiments", "create", "--experiment-name", " ")
    assert (result.exit_code, result.stderr) == (
        2,
        "mlrun: error: an experiment name must not be empty\n",
    )
    assert not (tmp_path / "mlruns").exists()
