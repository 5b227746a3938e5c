"""The index of runs with output tags answers as the run folders do, however it was left."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlrun_cli.tracking.file_store import FileStore
from mlrun_cli.tracking.tag_index import index_path
from mlrun_cli.tracking.tags import OUTPUT_TAG_PREFIX

# How one run comes to be: its output tag at creation, later, or never; then what happens to it.
RUNS = st.lists(
    st.tuples(
        st.sampled_from(["created-tagged", "tagged-later", "untagged"]),
        st.sampled_from(["kept", "deleted", "removed"]),
    ),
    max_size=12,
)
INDEX_FATE = st.sampled_from(["kept", "lost", "torn", "hostile"])


def _found(store: FileStore) -> set[str]:
    return {run.info.run_id for run in store.runs_tagged(OUTPUT_TAG_PREFIX)}


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(runs=RUNS, fate=INDEX_FATE)
def test_runs_tagged_answers_as_the_folders_do(tmp_path_factory, runs, fate) -> None:
    root = tmp_path_factory.mktemp("store") / "mlruns"
    store = FileStore(root)
    store.ensure()
    experiment = store.get_or_create_experiment("e")
    expected = set()
    for how, then in runs:
        tags = {f"{OUTPUT_TAG_PREFIX}model.digest": "ab"} if how == "created-tagged" else {}
        run = store.create_run(experiment, "r", "u", tags)
        if how == "tagged-later":
            store.set_tags(run, {f"{OUTPUT_TAG_PREFIX}model.digest": "cd"})
        if then == "deleted":
            store.set_run_lifecycle(run, "deleted")
        elif then == "removed":
            shutil.rmtree(root / experiment.experiment_id / run.run_id)
        elif how != "untagged":
            expected.add(run.run_id)
    index = index_path(root / experiment.experiment_id, OUTPUT_TAG_PREFIX)
    if fate == "lost":
        index.unlink(missing_ok=True)
    elif fate == "torn":
        with index.open("a") as handle:
            handle.write("0123456789abcdef")  # a writer died mid-line
    elif fate == "hostile":
        with index.open("a") as handle:
            handle.write("../../../../../../../../etc/xx\n" + "z" * 32 + "\n")
    assert _found(store) == expected
    assert _found(store) == expected  # the same once a lost index is rebuilt


def test_a_run_looks_only_at_the_runs_that_recorded_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store of many runs: only the tags folders of the runs with outputs are listed, so
    the question a run asks first costs the same in a big store as in a small one."""
    store = FileStore(tmp_path / "mlruns")
    store.ensure()
    experiment = store.get_or_create_experiment("e")
    wrote = store.create_run(experiment, "wrote", "u", {})
    store.set_tags(wrote, {f"{OUTPUT_TAG_PREFIX}model.digest": "ab"})
    for _ in range(20):
        store.create_run(experiment, "plain", "u", {})
    assert _found(store) == {wrote.run_id}  # the first question of a store builds what is missing
    listed: list[str] = []
    real_listdir = os.listdir

    def listdir(path: str | os.PathLike[str]) -> list[str]:
        listed.append(str(path))
        return real_listdir(path)

    monkeypatch.setattr("mlrun_cli.tracking.file_store.os.listdir", listdir)
    assert _found(store) == {wrote.run_id}
    assert [p for p in listed if p.endswith("tags")] == [
        str(tmp_path / "mlruns" / experiment.experiment_id / wrote.run_id / "tags")
    ]
