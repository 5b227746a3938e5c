"""MLflow's key rules, and the file store refusing what breaks them as a last line of defence."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlrun_cli.errors import StoreError
from mlrun_cli.tracking.file_store import FileStore
from mlrun_cli.tracking.keys import clash_problem, key_problem
from tests.hostile import tree


@pytest.mark.parametrize(
    "key",
    [
        "alpha",
        "a/b",
        "mlflow.source.git.commit",
        "with space",
        "time:s",
        "x" * 125 + "/" + "y" * 124,
    ],
)
def test_keys_mlflow_accepts_are_accepted(key: str) -> None:
    assert key_problem(key) is None


@pytest.mark.parametrize(
    "key", ["", ".", "..", "/a", "a/", "a//b", "./a", "a/../b", "a\0", "a\n", "x" * 251]
)
def test_keys_mlflow_refuses_are_refused(key: str) -> None:
    assert key_problem(key) is not None


def test_a_key_part_longer_than_a_file_name_allows_is_refused() -> None:
    """MLflow allows 250 characters; as one file name (written through a temporary name, in
    UTF-8) mlrun allows 200 bytes per part."""
    assert key_problem("x" * 200) is None
    assert key_problem("x" * 201) == "the part 'xxxxxxxxxxxxxxxxxxxx'... is longer than 200 bytes"
    assert key_problem("é" * 101) is not None


def test_a_key_and_its_folder_clash() -> None:
    assert clash_problem(["x", "x/y"]) == (
        "'x' and 'x/y' cannot both be keys ('x' would be a folder)"
    )
    assert clash_problem(["x", "xy", "x.y"]) is None


@pytest.fixture
def store_with_run(tmp_path: Path):
    store = FileStore(tmp_path / "store" / "mlruns")
    store.ensure()
    experiment = store.get_experiment("0")
    run = store.create_run(experiment, "r", "me", {})
    return store, run


@pytest.mark.parametrize("key", ["../../../../escaped", "/etc/passwd-copy", "a/./b", ".."])
def test_the_file_store_never_writes_outside_its_folders(
    store_with_run, tmp_path: Path, key: str
) -> None:
    store, run = store_with_run
    before = tree(tmp_path)
    for write in (store.log_params, store.set_tags):
        with pytest.raises(StoreError, match="cannot be stored"):
            write(run, {key: "value"})
    assert tree(tmp_path) == before


def test_the_file_store_refuses_a_key_that_would_be_a_file_and_a_folder(store_with_run) -> None:
    store, run = store_with_run
    store.set_tags(run, {"x": "1"})
    with pytest.raises(StoreError, match="'x' is already a key"):
        store.set_tags(run, {"x/y": "2"})
    store.set_tags(run, {"a/b": "1"})
    with pytest.raises(StoreError, match="other keys already use it as a folder"):
        store.set_tags(run, {"a": "2"})
    with pytest.raises(StoreError, match="'p' and 'p/q'"):
        store.log_params(run, {"p": "1", "p/q": "2"})


def test_the_file_store_refuses_values_it_cannot_store_as_utf8(store_with_run) -> None:
    store, run = store_with_run
    with pytest.raises(StoreError, match="not valid UTF-8"):
        store.set_tags(run, {"name": "bad\udcff"})
