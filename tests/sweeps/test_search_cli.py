"""`mlrun sweep --search` refuses bad input before anything exists: one line, exit 2, no store,
no run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from mlrun_cli.errors import StoreError
from mlrun_cli.tracking.file_store import FileStore
from tests.conftest import REPO

EXAMPLE = REPO / "examples" / "search"
SEARCH = ("sweep", str(EXAMPLE), "--no-env", "-P", "lr=loguniform(1e-4,1e-1)")
GOOD = ("--search", "tpe", "--trials", "2", "--objective", "loss", "--minimize")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--search", "bayes", "--trials", "2", "--objective", "loss", "--minimize"),
            "--search bayes: not a sampler; use one of tpe, random, grid",
        ),
        (
            ("--search", "tpe", "--trials", "0", "--objective", "loss", "--minimize"),
            "--trials 0: run at least one trial",
        ),
        (
            ("--search", "tpe", "--trials", "2", "--objective", "", "--minimize"),
            "--objective '' names no metric: a key must not be empty",
        ),
        (
            ("--search", "tpe", "--trials", "2", "--minimize"),
            "--search needs --objective METRIC: the metric the trials log",
        ),
        (
            ("--search", "tpe", "--trials", "2", "--objective", "loss"),
            "--objective loss: say --minimize or --maximize",
        ),
        (
            ("--search", "tpe", "--objective", "loss", "--minimize"),
            "--search needs --trials N: how many trials to run",
        ),
        (
            (*GOOD, "-P", "layers=uniform(1,4)"),
            "-P layers=uniform(1,4): parameter 'layers' is int; a float range does not fit (use int(a, b))",
        ),
        (
            (*GOOD, "-P", "dropout=choice(0.1,high)"),
            "-P dropout=choice(0.1,high): parameter 'dropout' is float: 'high' is not a number",
        ),
        ((*GOOD, "--enqueue", "lr=2"), "--enqueue 'lr=2': lr=2 is outside loguniform(1e-4,1e-1)"),
        ((*GOOD, "--prune", "early"), "--prune early: use one of median, hyperband"),
        (
            (*GOOD, "--backend", "kubernetes"),
            "--backend kubernetes: a search runs its trials on local, slurm, ray; use one of those",
        ),
        (
            (*GOOD, "--backend", "ray", "--prune", "median"),
            "--prune median: pruning stops trials on this machine only for now; drop --prune or "
            "--backend ray",
        ),
        (
            (*GOOD, "--backend", "slurm", "--prune", "median"),
            "--prune median: pruning stops trials on this machine only for now; drop --prune or "
            "--backend slurm",
        ),
        (
            ("--search", "grid", "--trials", "2", "--objective", "loss", "--minimize"),
            "--search grid: lr is a float range; give its values as a list or choice(...), or use --search tpe|random",
        ),
        (("--trials", "3"), "--trials goes with --search (or --resume)"),
        ((*GOOD, "--metric", "loss"), "--metric does not go with --search or --resume"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_no_run(
    cli, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    result = cli(*SEARCH, *args)
    assert (result.exit_code, result.stderr) == (2, f"mlrun: error: {message}\n")
    assert not (tmp_path / "mlruns").exists()


def test_without_optuna_a_search_says_how_to_install_it(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "optuna", None)  # what `import optuna` sees when absent
    result = cli(*SEARCH, *GOOD)
    assert (result.exit_code, result.stderr) == (
        2,
        "mlrun: error: --search needs Optuna, which is not installed: "
        "pip install 'mlrun-cli[search]'\n",
    )
    assert not (tmp_path / "mlruns").exists()


def test_resume_of_a_run_that_is_not_a_search(cli, tmp_path: Path) -> None:
    assert cli("run", str(EXAMPLE), "--no-env", "-P", "optimizer=adam").exit_code == 0
    listed = sorted(p.name for p in (tmp_path / "mlruns" / "0").iterdir() if p.is_dir())
    result = cli("sweep", str(EXAMPLE), "--no-env", "--resume", listed[0])
    assert (result.exit_code, result.stderr) == (
        2, f"mlrun: error: --resume {listed[0]}: run {listed[0]} is not a search\n",
    )  # fmt: skip
    result = cli("sweep", str(EXAMPLE), "--resume", listed[0], "-P", "lr=0.1")
    assert (result.exit_code, result.stderr) == (
        2, "mlrun: error: --resume continues the search its parent recorded; drop -P\n",
    )  # fmt: skip


@pytest.mark.parametrize("resumed", [False, True], ids=["new", "resumed"])
@pytest.mark.parametrize(
    ("fault", "status"),
    [(KeyboardInterrupt, "KILLED"), (StoreError("the store went away"), "FAILED")],
    ids=["ctrl-c", "store-error"],
)
def test_a_search_stopped_before_its_first_trial_ends_its_parent(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault, status, resumed
) -> None:
    """Ctrl-C or a lost store while the study is built (or rebuilt from the recorded trials):
    the parent, created or reopened a moment before, ends with the search, never RUNNING."""
    first = cli(*SEARCH, *GOOD, "--json")
    assert first.exit_code == 0, first.stderr
    parent_id = json.loads(first.stdout)["search"]["parent_run_id"]

    def stopped(*_args: object) -> None:
        raise fault

    monkeypatch.setattr("mlrun_cli.sweeps.search.Study", stopped)
    if resumed:
        again = cli("sweep", str(EXAMPLE), "--no-env", "--resume", parent_id, "--trials", "3")
    else:
        again = cli(*SEARCH, *GOOD)
    assert again.exit_code == (130 if fault is KeyboardInterrupt else StoreError.exit_code)
    runs = FileStore(tmp_path / "mlruns").stored_runs(["0"])
    assert [r.info.status.name for r in runs if r.info.status.name == "RUNNING"] == []
    parents = [r for r in runs if "mlrun.sweep" in r.tags and "mlflow.parentRunId" not in r.tags]
    assert len(parents) == (1 if resumed else 2)
    stopped_parent = (
        parents[0] if resumed else next(p for p in parents if p.info.run_id != parent_id)
    )
    assert stopped_parent.info.status.name == status
