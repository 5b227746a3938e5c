"""The file store: the same bytes MLflow writes, and MLflow's semantics for experiments."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

from mlrun_cli.errors import ConflictError, NotFoundError, StoreError
from mlrun_cli.tracking.entities import RunStatus
from mlrun_cli.tracking.file_store import FileStore


@pytest.fixture
def mlflow_store(monkeypatch: pytest.MonkeyPatch):
    """MLflow's own FileStore, to compare against."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    from mlflow.store.tracking.file_store import FileStore as MlflowFileStore

    return MlflowFileStore


def normalised(text: str, root: Path) -> str:
    """Ids, times and the store path differ between two stores; the rest must not."""
    text = text.replace(root.as_uri(), "ROOT")
    text = re.sub(r"\b\d{13}\b", "TIME", text)
    text = re.sub(r"\b\d{18,19}\b", "EXPID", text)
    return re.sub(r"\b[0-9a-f]{32}\b", "RUNID", text)


def assert_same_meta(ours: str, theirs: str) -> None:
    """Identical to what MLflow 3.17+ writes; older MLflow (Python 3.9 stops at 3.1) writes a
    subset of the same lines, which is what it reads back."""
    import mlflow

    if tuple(int(x) for x in mlflow.__version__.split(".")[:2]) >= (3, 17):
        assert ours == theirs
    else:
        assert set(theirs.splitlines()) <= set(ours.splitlines())


def test_a_new_store_has_the_default_experiment_as_mlflow_writes_it(tmp_path, mlflow_store) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    FileStore(ours).ensure()
    mlflow_store(str(theirs))
    assert_same_meta(
        normalised((ours / "0" / "meta.yaml").read_text(), ours),
        normalised((theirs / "0" / "meta.yaml").read_text(), theirs),
    )
    assert (ours / ".trash").is_dir()


def test_experiment_and_run_meta_match_mlflow_byte_for_byte(tmp_path, mlflow_store) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    store = FileStore(ours)
    store.ensure()
    experiment = store.create_experiment("iris")
    run = store.create_run(experiment, "r1", "alice", {})
    mlflow = mlflow_store(str(theirs))
    their_experiment = mlflow.create_experiment("iris")
    their_run = mlflow.create_run(their_experiment, "alice", 1, [], "r1")
    ours_exp = (ours / experiment.experiment_id / "meta.yaml").read_text()
    theirs_exp = (theirs / their_experiment / "meta.yaml").read_text()
    assert_same_meta(normalised(ours_exp, ours), normalised(theirs_exp, theirs))
    ours_run = (ours / experiment.experiment_id / run.run_id / "meta.yaml").read_text()
    theirs_run = (theirs / their_experiment / their_run.info.run_id / "meta.yaml").read_text()
    theirs_run = theirs_run.replace("start_time: 1\n", "start_time: 1000000000000\n")
    assert_same_meta(normalised(ours_run, ours), normalised(theirs_run, theirs))
    assert len(experiment.experiment_id) == len(their_experiment) == 18


def test_mlflow_reads_what_mlrun_writes(tmp_path, mlflow_store) -> None:
    store = FileStore(tmp_path)
    store.ensure()
    experiment = store.create_experiment("iris")
    run = store.create_run(experiment, "r1", "alice", {"team": "ml", "a/b": "nested"})
    store.log_params(run, {"alpha": "0.1", "path/like": "x"})
    store.finish_run(run, RunStatus.FAILED, run.start_time + 5)
    got = mlflow_store(str(tmp_path)).get_run(run.run_id)
    assert got.info.status == "FAILED"
    assert got.info.end_time == run.start_time + 5
    assert got.info.run_name == "r1"
    assert got.data.params == {"alpha": "0.1", "path/like": "x"}
    assert got.data.tags == {"team": "ml", "a/b": "nested", "mlflow.runName": "r1"}


def test_mlrun_lists_experiments_that_mlflow_created(tmp_path, mlflow_store) -> None:
    root = tmp_path / "mlruns"
    experiment_id = mlflow_store(str(root)).create_experiment("made-by-mlflow")
    names = {e.experiment_id: e.name for e in FileStore(root).list_experiments()}
    assert names == {"0": "Default", experiment_id: "made-by-mlflow"}


def test_delete_and_restore_follow_mlflow(tmp_path, mlflow_store) -> None:
    store = FileStore(tmp_path)
    store.ensure()
    experiment = store.create_experiment("old")
    run = store.create_run(experiment, "r", "u", {})
    store.delete_experiment(experiment.experiment_id)
    assert (tmp_path / ".trash" / experiment.experiment_id).is_dir()
    mlflow = mlflow_store(str(tmp_path))
    assert mlflow.get_experiment(experiment.experiment_id).lifecycle_stage == "deleted"
    assert mlflow.get_run(run.run_id).info.lifecycle_stage == "deleted"
    assert [e.name for e in store.list_experiments("deleted_only")] == ["old"]
    store.restore_experiment(experiment.experiment_id)
    assert mlflow.get_experiment(experiment.experiment_id).lifecycle_stage == "active"
    assert mlflow.get_run(run.run_id).info.lifecycle_stage == "active"


def test_names_are_unique_even_against_deleted_experiments(tmp_path) -> None:
    store = FileStore(tmp_path)
    store.ensure()
    experiment = store.create_experiment("x")
    with pytest.raises(ConflictError, match="'x' already exists"):
        store.create_experiment("x")
    store.delete_experiment(experiment.experiment_id)
    with pytest.raises(ConflictError, match="deleted"):
        store.create_experiment("x")
    with pytest.raises(ConflictError, match="is deleted; restore it"):
        store.get_or_create_experiment("x")


def test_rename_keeps_the_fields_mlflow_stored(tmp_path) -> None:
    store = FileStore(tmp_path)
    store.ensure()
    experiment = store.create_experiment("before")
    meta = tmp_path / experiment.experiment_id / "meta.yaml"
    meta.write_text(meta.read_text() + "future_field: kept\n")
    store.rename_experiment(experiment.experiment_id, "after")
    assert "future_field: kept" in meta.read_text()
    assert store.get_experiment(experiment.experiment_id).name == "after"


def test_default_experiment_cannot_be_deleted_and_unknown_ids_are_not_found(tmp_path) -> None:
    store = FileStore(tmp_path)
    store.ensure()
    with pytest.raises(ConflictError, match="Default experiment"):
        store.delete_experiment("0")
    with pytest.raises(NotFoundError, match="no experiment with id 42"):
        store.get_experiment("42")


def test_params_are_immutable_once_logged(tmp_path) -> None:
    store = FileStore(tmp_path)
    store.ensure()
    run = store.create_run(store.get_experiment("0"), "r", "u", {})
    store.log_params(run, {"alpha": "1"})
    store.log_params(run, {"alpha": "1"})
    with pytest.raises(ConflictError, match="'alpha' is already logged"):
        store.log_params(run, {"alpha": "2"})
    assert (store.artifact_dir(run).parent / "params" / "alpha").read_text() == "1"


def test_concurrent_get_or_create_makes_one_experiment(tmp_path) -> None:
    FileStore(tmp_path).ensure()
    ids: list[str] = []

    def create() -> None:
        ids.append(FileStore(tmp_path).get_or_create_experiment("shared").experiment_id)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(ids)) == 1
    assert [e.name for e in FileStore(tmp_path).list_experiments()] == ["Default", "shared"]


def test_a_store_path_that_is_a_file_is_refused(tmp_path) -> None:
    (tmp_path / "mlruns").write_text("not a store")
    with pytest.raises(StoreError, match="is a file, not a directory"):
        FileStore(tmp_path / "mlruns").ensure()
    assert (tmp_path / "mlruns").read_text() == "not a store"


def test_a_store_that_cannot_be_created_says_so(tmp_path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(StoreError, match="is not writable"):
        FileStore(tmp_path / "file" / "mlruns").ensure()


def test_a_corrupt_experiment_is_skipped_with_a_warning(tmp_path, caplog) -> None:
    store = FileStore(tmp_path)
    store.ensure()
    (tmp_path / "123").mkdir()
    (tmp_path / "123" / "meta.yaml").write_text(": : :\n[")
    assert [e.name for e in store.list_experiments()] == ["Default"]
    assert "/123: meta.yaml unreadable (not YAML: " in caplog.text


@pytest.mark.parametrize(
    "value",
    [
        "plain",
        "run-668",
        "'quoted'",
        "'it''s'",
        "12",
        "-3",
        "null",
        "[]",
        "''",
        "yes",
        "1e3",
        "1.5",
        "0x1f",
        "2024-01-02",
        "a: b",
        "'a: b'",
        "472c20f6659f4137b282ede6cc973469",
        "file:///tmp/x y",
        '"double"',
        "~",
        "on",
        "12:30",
    ],
)
def test_the_fast_meta_reader_agrees_with_pyyaml_or_defers_to_it(value: str) -> None:
    import yaml

    from mlrun_cli.tracking.meta_files import parse_flat_meta

    text = f"status: 3\nrun_name: {value}\n"
    fast = parse_flat_meta(text)
    if fast is not None:
        assert fast == yaml.safe_load(text)


def test_runs_tagged_finds_the_active_runs_with_a_tag_prefix_only(tmp_path) -> None:
    store = FileStore(tmp_path / "mlruns")
    store.ensure()
    experiment = store.get_or_create_experiment("e")
    wrote = store.create_run(experiment, "wrote", "u", {"mlrun.output.model.digest": "ab"})
    nested = store.create_run(experiment, "nested", "u", {"mlrun.output.a/b.digest": "cd"})
    store.create_run(experiment, "plain", "u", {"mlrun.input.data.digest": "ef"})
    deleted = store.create_run(experiment, "gone", "u", {"mlrun.output.x.digest": "01"})
    store.set_run_lifecycle(deleted, "deleted")
    (tmp_path / "mlruns" / experiment.experiment_id / "stray").mkdir()  # not a run

    found = {run.info.run_id for run in store.runs_tagged("mlrun.output.")}
    assert found == {wrote.run_id, nested.run_id}
