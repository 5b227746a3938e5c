"""One contract for every Store: the file store, the database store over SQLite and the REST
store against a real `mlflow server` (SQLite behind it) answer each method of the Store
protocol (mlrun_cli/tracking/store.py) alike, as the runs and experiments commands see them.

Where the stores legitimately differ, the test says so and why. The server and the database
are shared by a module's tests (a server takes seconds to start), so every test names its
experiments uniquely and looks only at them.
"""

from __future__ import annotations

import json
import math
import secrets
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlrun_cli.core.settings import Settings
from mlrun_cli.errors import ConflictError, NotFoundError, StoreError
from mlrun_cli.tracking.entities import ACTIVE, DELETED, Experiment, RunInfo, RunStatus
from mlrun_cli.tracking.file_store import now_ms
from mlrun_cli.tracking.keys import MAX_PARAM_VALUE_LENGTH, key_problem
from mlrun_cli.tracking.store import (
    RecordedRun,
    Store,
    newest_finished_tagged,
    open_store,
    runs_tagged,
)
from tests.conftest import child_env
from tests.servers import MlflowServer

KINDS = [
    "file",
    pytest.param("database", marks=pytest.mark.slow),
    pytest.param("rest", marks=pytest.mark.slow),
]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    data = tmp_path_factory.mktemp("mlflow-server")
    server = MlflowServer(f"sqlite:///{data / 'mlflow.db'}", data).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def database_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sqlite-store")


@pytest.fixture(params=KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """A store of each kind, opened as `mlrun` opens one: from its tracking URI."""
    kind = request.param
    if kind == "file":
        uri, cwd = str(tmp_path / "mlruns"), tmp_path
    elif kind == "database":
        directory = request.getfixturevalue("database_dir")
        uri, cwd = f"sqlite:///{directory / 'mlflow.db'}", directory
    else:
        uri, cwd = request.getfixturevalue("mlflow_server").uri, tmp_path
    opened = open_store(Settings.resolve(uri, cwd))
    opened.ensure()
    return opened


def unique(stem: str) -> str:
    return f"{stem}-{secrets.token_hex(4)}"


def new_run(store: Store, experiment: Experiment, name: str = "r", **tags: str) -> RunInfo:
    return store.create_run(experiment, name, "alice", tags)


def test_a_store_once_ensured_exists_and_is_readable(store: Store) -> None:
    assert store.exists()
    store.check_readable()
    assert store.location


def test_experiments_are_created_found_listed_and_renamed(store: Store) -> None:
    name = unique("exp")
    created = store.create_experiment(name)
    assert (created.name, created.lifecycle_stage) == (name, ACTIVE)
    assert store.get_experiment(created.experiment_id) == created
    assert store.find_experiment(name) == created
    assert created.experiment_id in [e.experiment_id for e in store.list_experiments()]
    assert store.get_or_create_experiment(name) == created
    renamed = store.rename_experiment(created.experiment_id, name + "-new")
    assert (renamed.experiment_id, renamed.name) == (created.experiment_id, name + "-new")
    assert store.find_experiment(name) is None
    assert store.find_experiment(name + "-new") == store.get_experiment(created.experiment_id)


def test_get_or_create_creates_a_missing_experiment_once(store: Store) -> None:
    name = unique("made")
    first = store.get_or_create_experiment(name)
    assert store.get_or_create_experiment(name).experiment_id == first.experiment_id
    assert [e.experiment_id for e in store.list_experiments() if e.name == name] == [
        first.experiment_id
    ]


def test_experiment_names_are_unique_and_not_empty(store: Store) -> None:
    name, other = unique("taken"), unique("other")
    store.create_experiment(name)
    second = store.create_experiment(other)
    with pytest.raises(ConflictError, match="already exists"):
        store.create_experiment(name)
    with pytest.raises(ConflictError, match="already exists"):
        store.rename_experiment(second.experiment_id, name)
    with pytest.raises(ConflictError):
        store.create_experiment("")


def test_unknown_experiments_and_runs_are_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError):
        store.get_experiment("987654321")
    assert store.find_experiment(unique("nobody")) is None
    with pytest.raises(NotFoundError):
        store.get_run(secrets.token_hex(16))
    assert store.runs_with_prefix("not-hex!") == []


def test_a_deleted_experiment_keeps_its_name_and_its_runs_until_restored(store: Store) -> None:
    name = unique("gone")
    experiment = store.create_experiment(name)
    run = new_run(store, experiment)
    deleted = store.delete_experiment(experiment.experiment_id)
    assert deleted.lifecycle_stage == DELETED
    active = [e.experiment_id for e in store.list_experiments("active_only")]
    trashed = [e.experiment_id for e in store.list_experiments("deleted_only")]
    assert experiment.experiment_id not in active and experiment.experiment_id in trashed
    found = store.find_experiment(name)
    assert found is not None and found.lifecycle_stage == DELETED  # the name stays reserved
    assert store.get_run(run.run_id).info.lifecycle_stage == DELETED
    with pytest.raises(ConflictError, match="already exists"):
        store.create_experiment(name)
    with pytest.raises(ConflictError, match="deleted"):
        store.get_or_create_experiment(name)
    with pytest.raises(ConflictError, match="deleted"):
        new_run(store, deleted)
    with pytest.raises(ConflictError, match="already deleted"):
        store.delete_experiment(experiment.experiment_id)
    restored = store.restore_experiment(experiment.experiment_id)
    assert restored.lifecycle_stage == ACTIVE
    assert store.get_run(run.run_id).info.lifecycle_stage == ACTIVE
    with pytest.raises(ConflictError, match="not deleted"):
        store.restore_experiment(experiment.experiment_id)


def test_the_default_experiment_cannot_be_deleted(store: Store) -> None:
    with pytest.raises(ConflictError, match="Default experiment"):
        store.delete_experiment("0")


def test_a_run_records_what_was_logged_and_its_end(store: Store) -> None:
    experiment = store.create_experiment(unique("runs"))
    info = new_run(store, experiment, "trained", team="vision")
    assert (info.status, info.run_name, info.user_id) == (RunStatus.RUNNING, "trained", "alice")
    assert info.experiment_id == experiment.experiment_id and info.end_time is None
    store.log_params(info, {"lr": "0.1", "model": "cnn"})
    store.set_tags(info, {"stage": "first"})
    store.set_tags(info, {"stage": "second"})  # tags, unlike params, may change
    store.log_metrics(info, {"acc": 0.5, "loss": 2.0}, now_ms())
    scheduled = store.set_run_status(info, RunStatus.SCHEDULED)
    assert scheduled.status == RunStatus.SCHEDULED
    assert store.get_run(info.run_id).info.status == RunStatus.SCHEDULED
    end = info.start_time + 1500
    ended = store.finish_run(info, RunStatus.FINISHED, end)
    assert (ended.status, ended.end_time) == (RunStatus.FINISHED, end)
    run = store.get_run(info.run_id)
    assert run.info == ended
    assert run.duration_seconds == 1.5
    assert run.params == {"lr": "0.1", "model": "cnn"}
    assert run.metrics == {"acc": 0.5, "loss": 2.0}
    assert run.metric("acc") == 0.5 and run.metric("missing") is None
    assert (run.param("lr"), run.tag("stage"), run.tag("team")) == ("0.1", "second", "vision")
    assert run.tags["mlflow.runName"] == "trained"
    assert run.attribute("status") == "FINISHED" and run.attribute("run_name") == "trained"


def test_the_latest_metric_value_is_the_one_read(store: Store) -> None:
    experiment = store.create_experiment(unique("metrics"))
    info = new_run(store, experiment)
    store.log_metrics(info, {"acc": 0.1}, 1000)
    store.log_metrics(info, {"acc": 0.9}, 2000)
    assert store.get_run(info.run_id).metrics == {"acc": 0.9}


def test_a_param_keeps_its_first_value(store: Store) -> None:
    """Params are immutable, as in MLflow. The file store says ConflictError; a server or a
    database refuses with its own error (a StoreError naming the param): same outcome."""
    experiment = store.create_experiment(unique("params"))
    info = new_run(store, experiment)
    store.log_params(info, {"lr": "0.1"})
    store.log_params(info, {"lr": "0.1"})  # the same value again is fine
    with pytest.raises(StoreError, match="lr"):
        store.log_params(info, {"lr": "0.2"})
    assert store.get_run(info.run_id).params == {"lr": "0.1"}


def _three_runs(store: Store) -> tuple[Experiment, list[RunInfo]]:
    experiment = store.create_experiment(unique("search"))
    runs = []
    cases = [(RunStatus.FINISHED, 0.5, "cnn"), (RunStatus.FAILED, 0.9, "rnn")]
    cases.append((RunStatus.FINISHED, 0.7, "cnn"))
    for index, (status, acc, model) in enumerate(cases):
        info = new_run(store, experiment, f"run-{index}", team="vision" if index else "nlp")
        store.log_params(info, {"model": model})
        store.log_metrics(info, {"acc": acc}, now_ms())
        store.finish_run(info, status, now_ms())
        runs.append(info)
        started = info.start_time
        while now_ms() <= started:  # the next run starts later: "newest first" has one answer
            continue
    return experiment, runs


def _ids(runs: Sequence[RecordedRun]) -> list[str]:
    return [run.info.run_id for run in runs]


def test_search_filters_orders_and_limits_alike(store: Store) -> None:
    experiment, runs = _three_runs(store)
    first, second, third = (info.run_id for info in runs)
    ids = [experiment.experiment_id]

    def search(
        filter_string: str | None, order: tuple[str, ...] = (), limit: int = 100
    ) -> list[str]:
        return _ids(store.search_runs(ids, filter_string, order, "active_only", limit))

    assert search(None) == [third, second, first]  # MLflow's default: newest first
    assert search(None, limit=2) == [third, second]
    assert search("metrics.acc > 0.6", ("metrics.acc DESC",)) == [second, third]
    assert search("params.model = 'cnn'", ("metrics.acc ASC",)) == [first, third]
    assert search("tags.team = 'vision' and attributes.status = 'FINISHED'") == [third]
    assert search("attributes.run_name = 'run-1'") == [second]
    assert search("metrics.acc > 5") == []
    assert sorted(_ids(store.stored_runs(ids))) == sorted([first, second, third])


def test_tagged_runs_helpers_answer_alike(store: Store) -> None:
    """runs_tagged and newest_finished_tagged take the server's path for a remote store and a
    local pass for the file store: the answers are the same."""
    experiment, runs = _three_runs(store)
    assert _ids(runs_tagged(store, experiment.experiment_id, "team", "vision")) == [
        runs[2].run_id,
        runs[1].run_id,
    ]
    found = newest_finished_tagged(store, experiment.experiment_id, "team", ["vision", "nlp", "x"])
    assert {value: run.info.run_id for value, run in found.items()} == {
        "vision": runs[2].run_id,
        "nlp": runs[0].run_id,
    }


def test_a_deleted_run_leaves_the_active_view_until_restored(store: Store) -> None:
    experiment, runs = _three_runs(store)
    ids = [experiment.experiment_id]
    store.set_run_lifecycle(runs[0], DELETED)
    assert runs[0].run_id not in _ids(store.stored_runs(ids))
    assert _ids(store.search_runs(ids, None, (), "deleted_only", 10)) == [runs[0].run_id]
    assert len(store.stored_runs(ids, "all")) == 3
    assert store.get_run(runs[0].run_id).info.lifecycle_stage == DELETED
    store.set_run_lifecycle(runs[0], ACTIVE)
    assert store.get_run(runs[0].run_id).info.lifecycle_stage == ACTIVE
    assert len(store.stored_runs(ids)) == 3


def test_runs_are_found_by_id_prefix_and_listed_newest_first(store: Store) -> None:
    experiment, runs = _three_runs(store)
    for info in runs:
        assert _ids(store.runs_with_prefix(info.run_id)) == [info.run_id]
        assert info.run_id in _ids(store.runs_with_prefix(info.run_id[:8].upper()))
    listed = store.list_runs(experiment)
    assert [info.run_id for info in listed] == [info.run_id for info in reversed(runs)]


def test_artifacts_are_written_published_read_and_listed(store: Store, tmp_path: Path) -> None:
    """A file store (and a database store whose artifacts are local) writes in place; a
    server's store stages in `artifact_dir` and uploads on publish: once published, all read
    the same."""
    experiment = store.create_experiment(unique("artifacts"))
    info = new_run(store, experiment)
    source = tmp_path / "model.txt"
    source.write_text("weights\n")
    store.add_artifact(info, source, "model/model.txt")
    store.write_artifact(info, "logs/stdout.log", "hello\n")
    assert (store.artifact_dir(info) / "logs" / "stdout.log").read_text() == "hello\n"
    store.publish(store.finish_run(info, RunStatus.FINISHED, now_ms()))
    assert store.read_artifact(info, "logs/stdout.log") == "hello\n"
    assert store.read_artifact(info, "model/model.txt") == "weights\n"
    assert store.read_artifact(info, "logs/missing.log") is None
    assert store.list_artifacts(info) == [("logs/stdout.log", 6), ("model/model.txt", 8)]
    assert store.get_run(info.run_id).info.status == RunStatus.FINISHED


READ_WITH_MLFLOW = """
import json, sys
from mlflow import MlflowClient
run = MlflowClient(sys.argv[1]).get_run(sys.argv[2])
inputs = [(d.dataset.name, d.dataset.digest, [t.value for t in d.tags])
          for d in run.inputs.dataset_inputs]
print(json.dumps({"status": run.info.status, "params": run.data.params, "inputs": inputs}))
"""


def test_mlflow_attaches_to_the_run_through_the_child_environment(store: Store) -> None:
    """What the entry point gets (child_environment) lets MLflow's own client read the run,
    its params and its dataset inputs, from another process."""
    experiment = store.create_experiment(unique("child"))
    info = new_run(store, experiment)
    store.log_params(info, {"lr": "0.1"})
    dataset = {"name": "train.csv", "digest": "abc123", "source_type": "local",
               "source": "file:///data/train.csv", "schema": None, "profile": None}  # fmt: skip
    store.log_dataset_input(info, dataset, "training")
    store.finish_run(info, RunStatus.FINISHED, now_ms())
    env = store.child_environment(info, experiment)
    assert (env["MLFLOW_RUN_ID"], env["MLFLOW_EXPERIMENT_ID"]) == (
        info.run_id,
        experiment.experiment_id,
    )
    for path in store.host_paths(info):
        assert path.is_absolute()
    done = subprocess.run(
        [sys.executable, "-c", READ_WITH_MLFLOW, env["MLFLOW_TRACKING_URI"], info.run_id],
        capture_output=True,
        text=True,
        env=child_env(**{k: v for k, v in env.items() if k != "MLFLOW_RUN_ID"}),
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen == {
        "status": "FINISHED",
        "params": {"lr": "0.1"},
        "inputs": [["train.csv", "abc123", ["training"]]],
    }


KEY_TEXT = st.text(alphabet="abcXYZ019_-. :", min_size=1, max_size=12)
VALUE_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), max_size=40
)


def _valid_keys(keys: list[str]) -> list[str]:
    """MLflow's key rules; a key starting with a dot is left to its own test (a known bug)."""
    return [key for key in keys if key_problem(key) is None and not key.startswith(".")]


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    params=st.dictionaries(KEY_TEXT, VALUE_TEXT, max_size=4),
    tags=st.dictionaries(KEY_TEXT, VALUE_TEXT, max_size=4),
    metric=st.floats(allow_nan=True, allow_infinity=True),
    long_value=st.integers(min_value=0, max_value=9000),
)
def test_any_valid_params_tags_and_metrics_read_back_as_written(
    store: Store,
    params: dict[str, str],
    tags: dict[str, str],
    metric: float,
    long_value: int,
) -> None:
    """Whatever text a value holds (newlines, carriage returns, spaces at either end, any
    script) every store gives it back unchanged; a value over MLflow's limit is cut to it."""
    experiment = store.get_or_create_experiment("generated")
    info = new_run(store, experiment)
    params = {key: params[key] for key in _valid_keys(list(params))}
    tags = {f"t{key}": value for key, value in tags.items() if key_problem(f"t{key}") is None}
    params["long"] = "x" * long_value
    store.log_params(info, params)
    store.set_tags(info, tags)
    store.log_metrics(info, {"m": metric}, now_ms())
    run = store.get_run(info.run_id)
    assert run.params == {**params, "long": "x" * min(long_value, MAX_PARAM_VALUE_LENGTH)}
    assert {key: run.tags[key] for key in tags} == tags
    read = run.metrics["m"]
    assert (math.isnan(read) and math.isnan(metric)) or read == metric


def test_a_key_starting_with_a_dot_reads_back(store: Store) -> None:
    """MLflow accepts `.seed` and `a/.b` as keys and its own stores return them."""
    experiment = store.create_experiment(unique("dots"))
    info = new_run(store, experiment)
    store.log_params(info, {".seed": "1", "a/.b": "2", "c": "3"})
    store.set_tags(info, {".t": "v"})
    run = store.get_run(info.run_id)
    assert run.params == {".seed": "1", "a/.b": "2", "c": "3"}
    assert run.tags[".t"] == "v"


def test_an_artifact_in_a_dot_folder_is_published_and_listed(store: Store) -> None:
    """Hydra keeps a run's config in `.hydra/`: an entry point's outputs may start with a dot.
    (A server's store even deletes the staged file unsent when it publishes.)"""
    experiment = store.create_experiment(unique("dot-artifacts"))
    info = new_run(store, experiment)
    store.write_artifact(info, ".hydra/config.yaml", "lr: 0.1\n")
    store.publish(store.finish_run(info, RunStatus.FINISHED, now_ms()))
    assert store.list_artifacts(info) == [(".hydra/config.yaml", 8)]
    assert store.read_artifact(info, ".hydra/config.yaml") == "lr: 0.1\n"
