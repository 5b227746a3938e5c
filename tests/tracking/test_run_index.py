"""The newest-first listing uses a derived index that is never trusted over the run folders."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

from mlrun_cli.commands.runs import RunQuery, list_runs
from mlrun_cli.core.settings import Settings
from mlrun_cli.tracking.file_store import FileStore
from mlrun_cli.tracking.run_index import INDEX
from tests.stores import build_store


def newest(root: Path, max_results: int = 1000, filter_string: str | None = None) -> list[str]:
    query = RunQuery(experiment_ids=["0"], max_results=max_results, filter=filter_string)
    settings = Settings.resolve(tracking_uri=str(root))
    return [r.info.run_id for r in list_runs(settings, query).runs]


def full_order(root: Path) -> list[str]:
    """What the listing must equal: every run read from its folder, sorted as MLflow sorts."""
    runs = FileStore(root).stored_runs(["0"])
    return [r.info.run_id for r in sorted(runs, key=lambda r: (-r.info.start_time, r.info.run_id))]


def test_runs_written_without_mlrun_are_indexed_from_their_folders(tmp_path: Path) -> None:
    build_store(tmp_path, 40)  # mlrun_log writes the runs: no index yet
    root = tmp_path / "mlruns"
    assert not (root / "0" / INDEX).exists()
    assert newest(root) == full_order(root)
    assert len((root / "0" / INDEX).read_text().splitlines()) == 40
    assert newest(root, 5) == full_order(root)[:5]


def test_created_removed_and_torn_entries_are_healed(tmp_path: Path) -> None:
    build_store(tmp_path, 12)
    root = tmp_path / "mlruns"
    newest(root)
    store = FileStore(root)
    created = store.create_run(store.get_experiment("0"), "new", "me", {})
    assert newest(root, 1) == [created.run_id]
    gone = full_order(root)[3]
    shutil.rmtree(root / "0" / gone)
    with open(root / "0" / INDEX, "a") as index:
        index.write("17000000")  # a line cut short by a crash
    assert newest(root) == full_order(root)
    assert gone not in newest(root)


def test_deleting_the_index_costs_nothing_but_time(tmp_path: Path) -> None:
    build_store(tmp_path, 15)
    root = tmp_path / "mlruns"
    before = newest(root)
    (root / "0" / INDEX).unlink()
    assert newest(root) == before


def test_a_filter_still_sees_every_run_newest_first(tmp_path: Path) -> None:
    build_store(tmp_path, 30)
    root = tmp_path / "mlruns"
    expected = [
        r.info.run_id
        for r in sorted(
            FileStore(root).stored_runs(["0"]), key=lambda r: (-r.info.start_time, r.info.run_id)
        )
        if r.metrics.get("m", -1.0) > 0.5
    ]
    assert newest(root, filter_string="metrics.m > 0.5") == expected


def test_runs_created_at_the_same_time_are_all_listed(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "mlruns")
    store.ensure()
    experiment = store.get_experiment("0")
    created: list[str] = []

    def create_some() -> None:
        for _ in range(25):
            created.append(store.create_run(experiment, "r", "me", {}).run_id)

    threads = [threading.Thread(target=create_some) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(newest(tmp_path / "mlruns")) == sorted(created)
    assert newest(tmp_path / "mlruns") == full_order(tmp_path / "mlruns")
