"""The file store shared with MLflow's in-place writer and with other mlrun processes."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from mlrun_cli.errors import StoreError
from mlrun_cli.tracking import file_store
from mlrun_cli.tracking.entities import DELETED, RunInfo, RunStatus
from mlrun_cli.tracking.file_store import FileStore


def new_run(tmp_path: Path) -> tuple[FileStore, RunInfo]:
    store = FileStore(tmp_path / "mlruns")
    store.ensure()
    experiment = store.get_or_create_experiment("shared")
    return store, store.create_run(experiment, "r", "alice", {})


def meta_path(store: FileStore, info: RunInfo) -> Path:
    return store.root / info.experiment_id / info.run_id / "meta.yaml"


def test_reads_and_updates_survive_mlflow_rewriting_meta_in_place(tmp_path: Path) -> None:
    """MLflow's FileStore rewrites meta.yaml with open(path, 'w'): readers see it empty."""
    store, info = new_run(tmp_path)
    path = meta_path(store, info)
    whole = path.read_text(encoding="utf-8")
    stop = threading.Event()

    def mlflow_writer() -> None:
        """Rewrites as MLflow does, back to back but not in a loop with no gap at all: such a
        writer leaves the file torn nearly all the time, which no status update of MLflow's
        does, and a reader on a loaded machine then found no whole copy for seconds."""
        while not stop.wait(0.001):
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(whole)

    writer = threading.Thread(target=mlflow_writer)
    writer.start()
    try:
        for _ in range(200):
            assert store.get_run(info.run_id).info.run_id == info.run_id
            assert store.read_run(info.run_id)[0].experiment_id == info.experiment_id
            store.set_run_status(info, RunStatus.RUNNING)
    finally:
        stop.set()
        writer.join()
    meta = file_store.read_meta(path)
    assert meta["run_id"] == info.run_id
    assert meta["artifact_uri"] == info.artifact_uri


def test_meta_that_stays_empty_is_reported_damaged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(file_store, "TORN_READ_SECONDS", 0.1)
    store, info = new_run(tmp_path)
    meta_path(store, info).write_text("", encoding="utf-8")
    with pytest.raises(StoreError, match=r"meta\.yaml: damaged .*mlrun doctor"):
        store.get_run(info.run_id)
    with pytest.raises(StoreError, match="mlrun doctor"):
        store.finish_run(info, RunStatus.FINISHED, 5)
    assert meta_path(store, info).read_text(encoding="utf-8") == ""  # nothing written back


def test_delete_racing_the_final_status_keeps_both(tmp_path: Path) -> None:
    for trial in range(40):
        store, info = new_run(tmp_path / str(trial))
        threads = [
            threading.Thread(target=store.set_run_lifecycle, args=(info, DELETED)),
            threading.Thread(target=store.finish_run, args=(info, RunStatus.FINISHED, 7)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        meta = file_store.read_meta(meta_path(store, info))
        assert meta["lifecycle_stage"] == DELETED, trial
        assert meta["deleted_time"], trial
        assert (meta["status"], meta["end_time"]) == (int(RunStatus.FINISHED), 7), trial


@pytest.mark.parametrize(
    "write",
    [
        lambda s, i: s.set_run_lifecycle(i, DELETED),
        lambda s, i: s.set_run_status(i, RunStatus.FAILED),
        lambda s, i: s.log_metrics(i, {"m": 1.0}, 1),
        lambda s, i: s.rename_experiment(i.experiment_id, "other"),
        lambda s, i: s.delete_experiment(i.experiment_id),
    ],
)
def test_unwritable_store_is_one_store_error(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    write: Callable[[FileStore, RunInfo], object],
) -> None:
    store, info = new_run(tmp_path)

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(args[0]))

    monkeypatch.setattr(file_store, "write_atomic", refuse)
    monkeypatch.setattr(os, "replace", refuse)
    monkeypatch.setattr("builtins.open", refuse)
    with pytest.raises(StoreError, match=r"cannot .*Permission denied"):
        write(store, info)
