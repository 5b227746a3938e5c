"""A damaged store still works: every healthy run is listed, each damaged one is named once,
`runs describe` shows what is readable, and `mlrun doctor --fix` makes MLflow read it again."""

from __future__ import annotations

import json
import logging
import secrets
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlrun_cli.tracking.entities import RunStatus
from mlrun_cli.tracking.file_store import FileStore, readable_run

PARAM_TEXT = "héllo wörld ✓"
METRIC_LINES = b"1700000000000 0.5 0\n1700000000001 0.25 1\n1700000000002 0.125 2\n"


def healthy_run(store: FileStore, experiment_id: str = "0", name: str = "healthy") -> Path:
    info = store.create_run(store.get_experiment(experiment_id), name, "tester", {"team": "a"})
    store.log_params(info, {"alpha": "0.5", "text": PARAM_TEXT})
    run_dir = store.root / experiment_id / info.run_id
    (run_dir / "metrics" / "loss").write_bytes(METRIC_LINES)
    store.finish_run(info, RunStatus.FINISHED, info.start_time + 1000)
    return run_dir


def clone_run(template: Path) -> Path:
    """A copy of a run under a new id: thousands of cases without the store's fsyncs."""
    run_id = secrets.token_hex(16)
    clone = template.parent / run_id
    shutil.copytree(template, clone)
    meta = clone / "meta.yaml"
    meta.write_text(meta.read_text().replace(template.name, run_id))
    return clone


def with_meta(change: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def damage(run_dir: Path) -> None:
        meta = run_dir / "meta.yaml"
        meta.write_bytes(change(meta.read_bytes()))

    return damage


def with_file(relative: str, content: bytes) -> Callable[[Path], None]:
    return lambda run_dir: (run_dir / relative).write_bytes(content)


CUT_LAST_LINE = METRIC_LINES[: METRIC_LINES.rindex(b"\n", 0, -1) + 1] + b"1700000000"
DAMAGES = {
    "empty meta.yaml": with_meta(lambda data: b""),
    "half-written meta.yaml": with_meta(lambda data: data[: len(data) // 2]),
    "zero-filled meta.yaml": with_meta(lambda data: b"\0" * len(data)),
    "zero-filled tail of meta.yaml": with_meta(lambda data: data[:100] + b"\0" * 200),
    "non-UTF-8 meta.yaml": with_meta(lambda data: data[:30] + b"\xff\xfe" + data[30:]),
    "torn last metric line": with_file("metrics/loss", CUT_LAST_LINE),
    "zero-filled last metric line": with_file("metrics/loss", METRIC_LINES + b"\0" * 24),
    "torn UTF-8 param": with_file("params/text", PARAM_TEXT.encode()[:2]),
}
META_DAMAGE = [name for name in DAMAGES if "meta.yaml" in name]


def warnings_about(stderr: str, run_id: str) -> list[str]:
    return [line for line in stderr.splitlines() if run_id in line]


@pytest.mark.parametrize("damage", DAMAGES)
def test_one_damaged_run_is_named_once_and_hides_no_healthy_run(cli, tmp_path, damage) -> None:
    store = FileStore(tmp_path / "mlruns")
    store.ensure()
    healthy = [healthy_run(store).name for _ in range(2)]
    damaged = healthy_run(store, name="damaged")
    DAMAGES[damage](damaged)

    listing = cli("runs", "list")
    assert listing.exit_code == 0, listing.stderr
    [warning] = warnings_about(listing.stderr, damaged.name)
    assert warning.startswith(f"mlrun: warning: mlruns/0/{damaged.name}: ")
    assert warning.endswith("; skipped")
    assert listing.stderr.count("warning") == 1
    as_json = cli("runs", "list", "--json")
    assert as_json.exit_code == 0, as_json.stderr
    listed = {run["run_id"] for run in json.loads(as_json.stdout)["runs"]}
    assert set(healthy) <= listed
    assert (damaged.name in listed) == (damage not in META_DAMAGE)
    assert len(warnings_about(as_json.stderr, damaged.name)) == 1
    experiments = cli("experiments", "list")
    assert (experiments.exit_code, experiments.stdout.count("Default")) == (0, 1)

    described = cli("runs", "describe", damaged.name)
    assert described.exit_code == 0, described.stderr
    assert f"run_id: {damaged.name}\n" in described.stdout
    assert "damaged: " in described.stdout
    assert "  team: a\n" in described.stdout  # what is readable is shown
    assert "  alpha: 0.5\n" in described.stdout

    found = cli("doctor")
    assert found.exit_code == 4
    assert found.stdout.startswith(f"mlruns/0/{damaged.name}")
    assert found.stdout.endswith("1 damaged entry; --fix quarantines them\n")
    assert cli("doctor", "--fix").exit_code == 0
    after = cli("runs", "list", "--json")
    assert after.stderr == ""
    assert set(healthy) <= {run["run_id"] for run in json.loads(after.stdout)["runs"]}
    assert cli("doctor").stdout == f"{tmp_path / 'mlruns'}: no damaged entries\n"


def test_a_damaged_experiment_is_named_once_and_the_others_are_listed(cli, tmp_path) -> None:
    store = FileStore(tmp_path / "mlruns")
    store.ensure()
    kept = healthy_run(store).name
    broken = store.create_experiment("broken")
    healthy_run(store, broken.experiment_id)
    (tmp_path / "mlruns" / broken.experiment_id / "meta.yaml").write_bytes(b"")

    listed = cli("experiments", "list")
    assert listed.exit_code == 0
    assert listed.stderr == (
        f"mlrun: warning: mlruns/{broken.experiment_id}: meta.yaml unreadable (empty); skipped\n"
    )
    runs = cli("runs", "list", "--json")
    assert [run["run_id"] for run in json.loads(runs.stdout)["runs"]] == [kept]
    assert cli("doctor", "--fix").exit_code == 0
    assert (tmp_path / "mlruns" / ".damaged.trash" / broken.experiment_id / "meta.yaml").exists()
    assert cli("experiments", "list").stderr == ""


def test_after_doctor_fix_mlflow_reads_a_store_with_every_kind_of_damage(
    cli, tmp_path, monkeypatch
) -> None:
    store = FileStore(tmp_path / "mlruns")
    store.ensure()
    healthy = {healthy_run(store).name for _ in range(2)}
    for damage in DAMAGES.values():
        damage(healthy_run(store, name="damaged"))
    broken = store.create_experiment("broken")
    (tmp_path / "mlruns" / broken.experiment_id / "meta.yaml").write_bytes(b"\0" * 64)
    assert cli("doctor").stdout.endswith(
        f"{len(DAMAGES) + 1} damaged entries; --fix quarantines them\n"
    )
    assert cli("doctor", "--fix").exit_code == 0
    fixed = {run["run_id"] for run in json.loads(cli("runs", "list", "--json").stdout)["runs"]}
    assert healthy <= fixed and len(fixed) == len(healthy) + 3  # param and metrics damage
    assert mlflow_run_ids(store.root, monkeypatch) == fixed


def mlflow_run_ids(root: Path, monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """The runs MLflow's own client finds, after checking it lists the experiments too."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=root.as_uri())
    assert [e.experiment_id for e in client.search_experiments()] == ["0"]
    theirs = client.search_runs(["0"], max_results=5000)
    for run in theirs:  # and every value of them reads
        assert set(run.data.params) <= {"alpha", "text"}
        assert set(run.data.metrics) <= {"loss"}
    return {run.info.run_id for run in theirs}


@pytest.mark.slow
def test_every_truncation_and_torn_write_is_listed_or_named_and_mlflow_reads_the_fixed_store(
    cli, tmp_path, monkeypatch
) -> None:
    """Generated damage: each class at every offset, one run per case, in one store."""
    store = FileStore(tmp_path / "mlruns")
    store.ensure()
    healthy = {healthy_run(store).name for _ in range(3)}
    model = next(iter(store.root.glob("0/*/meta.yaml"))).parent
    template = (model / "meta.yaml").read_bytes()
    cases: list[Callable[[Path], None]] = []
    for offset in range(len(template)):
        cases.append(with_meta(lambda data, n=offset: data[:n]))
        cases.append(with_meta(lambda data, n=offset: data[:n] + b"\0" * (len(data) - n)))
    for offset in range(len(METRIC_LINES) - 24, len(METRIC_LINES)):
        cases.append(with_file("metrics/loss", METRIC_LINES[:offset]))
        cases.append(with_file("metrics/loss", METRIC_LINES[:offset] + b"\0" * 8))
    encoded = PARAM_TEXT.encode()
    for offset in range(len(encoded)):
        cases.append(with_file("params/text", encoded[:offset]))
    damaged = set()
    for damage in cases:
        run_dir = clone_run(model)
        damage(run_dir)
        damaged.add(run_dir.name)

    listing = cli("runs", "list", "--json", "--max-results", "5000")
    assert listing.exit_code == 0, listing.stderr[-2000:]
    listed = {run["run_id"] for run in json.loads(listing.stdout)["runs"]}
    assert healthy <= listed
    for run_id in damaged:
        named = len(warnings_about(listing.stderr, run_id))
        assert named <= 1, run_id
        assert run_id in listed or named == 1, run_id
    assert cli("doctor", "--fix").exit_code == 0
    after = cli("runs", "list", "--json", "--max-results", "5000")
    assert after.stderr == ""
    fixed = {run["run_id"] for run in json.loads(after.stdout)["runs"]}
    assert healthy <= fixed
    assert mlflow_run_ids(store.root, monkeypatch) == fixed


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_as_meta_yaml_give_a_run_or_one_warning(content: bytes) -> None:
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("mlrun_cli")
    logger.addHandler(handler)
    try:
        with tempfile.TemporaryDirectory() as root:
            run_dir = Path(root) / "mlruns" / "0" / ("a" * 32)
            run_dir.mkdir(parents=True)
            (run_dir / "meta.yaml").write_bytes(content)
            run = readable_run(run_dir)
    finally:
        logger.removeHandler(handler)
    if run is None:
        assert len(records) == 1 and "meta.yaml unreadable" in records[0].getMessage()
    else:
        assert records == []
        assert run.info.run_id == "a" * 32 and isinstance(run.info.start_time, int)
