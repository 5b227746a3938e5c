"""Creating a run in the file store while other processes list it: a run appears whole or not
at all, and a run anyone could list never vanishes, whatever stops its creation (Ctrl-C at
any point, as when a Slurm submission is interrupted while mlrun records the run)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import pytest

from mlrun_cli.errors import NotFoundError
from mlrun_cli.tracking import file_store, run_index
from mlrun_cli.tracking.file_store import FileStore
from mlrun_cli.tracking.stored_run import StoredRun

TAGS = {"mlflow.parentRunId": "f" * 32, "mlrun.backend": "slurm", "team": "ml", "a/b": "nested"}


def _listed(reader: FileStore, name: str) -> list[StoredRun]:
    """What another process listing the experiment sees of the run called `name`."""
    return [r for r in reader.stored_runs(["0"]) if r.info.run_name == name]


def _steps(monkeypatch: pytest.MonkeyPatch, after_step: Callable[[int], None]) -> None:
    """Call `after_step(n)` after each of the creation's writes (files, then its index line)."""
    count = 0
    write_atomic, record_run = file_store.write_atomic, run_index.record_run

    def step() -> None:
        nonlocal count
        count += 1
        after_step(count)

    def writing(path: Path, text: str, **options: bool) -> None:
        write_atomic(path, text, **options)
        step()

    def recording(experiment_dir: Path, run_id: str, start_time: int) -> None:
        record_run(experiment_dir, run_id, start_time)
        step()

    monkeypatch.setattr(file_store, "write_atomic", writing)
    monkeypatch.setattr(run_index, "record_run", recording)


def test_another_process_lists_a_run_only_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    store, reader = FileStore(tmp_path / "mlruns"), FileStore(tmp_path / "mlruns")
    store.ensure()
    seen: list[dict[str, str]] = []  # the tags each listing showed, read at once
    _steps(monkeypatch, lambda _: seen.extend(dict(r.tags) for r in _listed(reader, "whole")))
    store.create_run(store.get_experiment("0"), "whole", "me", TAGS)
    assert seen, "the run was never listed while it was created"
    assert all(tags == {**TAGS, "mlflow.runName": "whole"} for tags in seen), seen


def test_ctrl_c_at_any_point_of_creating_a_run_never_removes_a_listed_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, reader = FileStore(tmp_path / "mlruns"), FileStore(tmp_path / "mlruns")
    store.ensure()
    experiment = store.get_experiment("0")
    steps: list[int] = []
    with monkeypatch.context() as counting:
        _steps(counting, steps.append)
        store.create_run(experiment, "counted", "me", TAGS)
    for stop_at in range(1, len(steps) + 1):
        name = f"stopped-at-{stop_at}"
        seen: list[StoredRun] = []

        def stop_there(
            step: int, name: str = name, stop_at: int = stop_at, seen: list[StoredRun] = seen
        ) -> None:
            seen.extend(_listed(reader, name))
            if step == stop_at:
                raise KeyboardInterrupt  # what Ctrl-C raises between two writes

        with monkeypatch.context() as interrupting:
            _steps(interrupting, stop_there)
            with pytest.raises(KeyboardInterrupt):
                store.create_run(experiment, name, "me", TAGS)
        after = _listed(reader, name)
        if seen:
            assert [r.info.status.name for r in after] == ["KILLED"], f"stopped at {stop_at}"
            assert reader.get_run(after[0].info.run_id).tags == {**TAGS, "mlflow.runName": name}
        else:
            assert after == [], f"stopped at {stop_at}"
    folders = [d for d in (tmp_path / "mlruns" / "0").iterdir() if d.is_dir()]
    assert all((d / "meta.yaml").is_file() for d in folders), "a half-created run is left"


def test_a_run_being_created_is_not_found_by_id_until_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, reader = FileStore(tmp_path / "mlruns"), FileStore(tmp_path / "mlruns")
    store.ensure()
    found: list[set[str]] = []

    def look(_: int) -> None:
        for run_dir in (tmp_path / "mlruns" / "0").iterdir():
            if len(run_dir.name) == 32:
                with contextlib.suppress(NotFoundError):
                    found.append(set(reader.get_run(run_dir.name).tags))

    _steps(monkeypatch, look)
    store.create_run(store.get_experiment("0"), "by-id", "me", TAGS)
    assert found and all(tags == {*TAGS, "mlflow.runName"} for tags in found)
