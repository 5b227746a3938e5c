"""A search over the README's examples/search project, as a user would run it: try a known
good point first, search two trials at a time, read the best trial off the parent with
`runs describe`, continue the search to more trials, and read it all back with MLflow's own
client, which nests the trials under the parent and shows the best value on it."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO, mlrun_command, run_mlrun, write_files

pytestmark = [pytest.mark.journey]


def _mlrun(cwd: Path, *args: str) -> tuple[dict[str, object], str]:
    done = run_mlrun(*args, cwd=cwd, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return (json.loads(done.stdout) if "--json" in args else {}), done.stdout


def test_search_describe_resume_and_read_back_with_mlflow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "search"
    shutil.copytree(REPO / "examples" / "search", project)
    first, _ = _mlrun(
        project, "sweep", ".", "--no-env", "--json", "--experiment-name", "tuning",
        "--search", "tpe", "--trials", "6", "-j", "2", "--seed", "1",
        "--objective", "loss", "--minimize",
        "-P", "lr=loguniform(1e-4,1e-1)", "-P", "dropout=uniform(0,0.5)",
        "-P", "layers=int(1,4)", "-P", "optimizer=choice(adam,sgd)", "-P", "epochs=3",
        "--enqueue", "lr=0.003,dropout=0.2,layers=3,optimizer=adam",
    )  # fmt: skip
    search = first["search"]
    assert isinstance(search, dict)
    parent_id = str(search["parent_run_id"])
    trials = search["trials"]
    assert isinstance(trials, list) and len(trials) == 6
    assert trials[0]["params"] == {"lr": "0.003", "dropout": "0.2", "layers": "3",
                                   "optimizer": "adam"}  # fmt: skip
    best = search["best"]
    assert isinstance(best, dict) and best["index"] == 1  # the enqueued point is near the optimum
    assert best["value"] < 0.01

    _, described = _mlrun(project, "runs", "describe", parent_id[:8])
    assert f"mlrun.search.best_run_id: {best['run_id']}" in described
    assert "mlrun.search.best_trial: 1" in described
    assert "mlrun.sweep: search" in described

    more, _ = _mlrun(project, "sweep", ".", "--no-env", "--json", "--resume", parent_id,
                     "--trials", "9")  # fmt: skip
    resumed = more["search"]
    assert isinstance(resumed, dict)
    assert resumed["executed"] == 3 and resumed["parent_run_id"] == parent_id
    again = resumed["trials"]
    assert isinstance(again, list) and [t["index"] for t in again] == list(range(1, 10))
    assert again[:6] == trials
    assert all(t["params"]["layers"] in {"1", "2", "3", "4"} for t in again)

    _, table = _mlrun(project, "runs", "list", "--experiment-name", "tuning",
                      "--filter", f"tags.`mlflow.parentRunId` = '{parent_id}'")  # fmt: skip
    assert len(table.strip().splitlines()) == 1 + 9

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=(project / "mlruns").as_uri())
    parent = client.get_run(parent_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["loss"] == pytest.approx(float(str(best["value"])))
    assert parent.data.tags["mlrun.search.best_run_id"] == best["run_id"]
    space = json.loads(parent.data.params["mlrun.search"])["space"]  # in -P order: the columns
    assert list(space) == ["lr", "dropout", "layers", "optimizer", "epochs"]
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent_id}'"
    )
    assert sorted(c.info.run_id for c in children) == sorted(t["run_id"] for t in again)
    assert {c.data.tags["mlrun.search.state"] for c in children} == {"COMPLETE"}


@pytest.mark.slow  # starts a tracking server
def test_search_resume_and_prune_on_a_tracking_server(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    from tests.servers import MlflowServer
    from tests.sweeps.test_search_pruning import prune_a_slow_trial

    server = MlflowServer(f"sqlite:///{tmp_path / 'server' / 'mlflow.db'}", tmp_path / "server")
    server.start()
    try:
        project = tmp_path / "search"
        shutil.copytree(REPO / "examples" / "search", project)
        first, _ = _mlrun(
            project, "sweep", ".", "--no-env", "--json", "--tracking-uri", server.uri,
            "--search", "tpe", "--trials", "4", "-j", "2", "--objective", "loss", "--minimize",
            "-P", "lr=loguniform(1e-4,1e-1)", "-P", "layers=int(1,4)",
        )  # fmt: skip
        parent_id = str(first["search"]["parent_run_id"])  # type: ignore[index]
        more, _ = _mlrun(project, "sweep", ".", "--no-env", "--json", "--tracking-uri",
                         server.uri, "--resume", parent_id, "--trials", "6")  # fmt: skip
        resumed = more["search"]
        assert isinstance(resumed, dict) and resumed["executed"] == 2
        trials = resumed["trials"]
        assert isinstance(trials, list)
        assert [(t["index"], t["state"]) for t in trials] == [(i, "COMPLETE") for i in range(1, 7)]
        client = MlflowClient(tracking_uri=server.uri)
        parent = client.get_run(parent_id)
        assert parent.info.status == "FINISHED"
        best = resumed["best"]
        assert isinstance(best, dict)
        assert parent.data.tags["mlrun.search.best_run_id"] == best["run_id"]
        children = client.search_runs(
            [parent.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent_id}'"
        )
        assert sorted(c.info.run_id for c in children) == sorted(t["run_id"] for t in trials)

        # --prune reads the running trials' points from the server
        prune_a_slow_trial(tmp_path, "median", "mlrun_log", server.uri)
    finally:
        server.stop()


def test_ctrl_c_under_the_live_table_then_resume_in_a_pipe(tmp_path: Path) -> None:
    """A search watched on a terminal is stopped with Ctrl-C while a trial stalls; the user
    fixes the cause, resumes it from a script (JSON, no live table), and finds every trial
    once: the finished ones kept, the killed one recorded KILLED and its point run again."""
    from tests.sweeps.test_search_output import STALLING, in_terminal, screen

    project = write_files(tmp_path / "project", STALLING)
    (project / "stall").write_text("")
    argv = mlrun_command("sweep", str(project), "--no-env", "--search", "random", "--seed", "1",
                         "--trials", "6", "-j", "2", "--objective", "loss", "--minimize",
                         "-P", "x=uniform(0,1)", "--experiment-name", "tuning")  # fmt: skip
    code, written = in_terminal(argv, tmp_path, 40, 200, interrupt_at=b"search: 5/6 told")
    shown = screen(written, 40, 200)
    assert code == 130, "\n".join(shown)
    summary = next(line for line in shown if re.match(r"search \w+: KILLED", line))
    parent_id = summary.split()[1].rstrip(":")

    (project / "stall").unlink()
    listed = run_mlrun("runs", "list", "--experiment-name", "tuning", "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    runs = json.loads(listed.stdout)["runs"]
    [parent] = [r for r in runs if r["run_id"] == parent_id]
    assert parent["status"] == "KILLED"
    more, plain = _mlrun(tmp_path, "sweep", str(project), "--no-env", "--json",
                         "--resume", parent["run_id"], "--trials", "8")  # fmt: skip
    resumed = more["search"]
    # The killed trial was never told: its point runs again first, then two new ones.
    assert isinstance(resumed, dict) and resumed["executed"] == 3
    trials = resumed["trials"]
    assert isinstance(trials, list)
    assert [t["index"] for t in trials] == list(range(1, 10))
    states = [(t["status"], t["state"]) for t in trials]
    assert states.count(("KILLED", None)) == 1 and states.count(("FINISHED", "COMPLETE")) == 8
    [killed] = [t for t in trials if t["status"] == "KILLED"]
    assert trials[6]["params"] == killed["params"]
    assert len({t["params"]["x"] for t in trials}) == 8
    assert "\x1b[" not in plain  # no live table in a pipe
