"""`mlrun runs ...`, the logging API, and MLflow reading and writing the same store."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlrun_cli.tracking.entities import RunStatus
from mlrun_cli.tracking.file_store import FileStore
from tests.conftest import RUNTIME, child_env, mlrun_command, run_mlrun, write_files
from tests.stores import build_store, mlflow_ids

PROJECT = {
    "MLproject": """
entry_points:
  main:
    parameters:
      lr: {type: float, default: 0.1}
      data: {type: path, default: data.csv}
    command: "python train.py {lr}"
  wait:
    command: "echo $$ >> entry-point-groups; echo started; sleep 60"
""",
    "data.csv": "x\n1\n",
    "train.py": """
import sys
import mlrun_log as ml
lr = float(sys.argv[1])
ml.log_metric("acc", 1 - lr)
ml.log_metric("acc", 1 - lr / 2, step=1)
ml.set_tag("stage", "test")
print("trained")
""",
}


def make_runs(cli, make_project, *lrs: str) -> list[str]:
    make_project(PROJECT)
    ids = []
    for lr in lrs:
        result = cli("run", "project", "--no-env", "-P", f"lr={lr}", "--json")
        assert result.exit_code == 0, result.stderr
        ids.append(json.loads(result.stdout)["run"]["run_id"])
    return ids


def test_runs_list_shows_what_differs(cli, make_project) -> None:
    first, second = make_runs(cli, make_project, "0.1", "0.5")
    lines = cli("runs", "list").stdout.splitlines()
    assert lines[0].split() == [
        "RUN",
        "ID",
        "NAME",
        "STATUS",
        "START",
        "TOTAL",
        "ENTRY",
        "POINT",
        "params.lr",
        "metrics.acc",
    ]
    assert [line.split()[0] for line in lines[1:]] == [second[:8], first[:8]]
    assert lines[1].split()[2] == "FINISHED"
    assert lines[1].split()[-2:] == ["0.5", "0.75"]  # the latest step's value


def test_runs_list_filter_order_and_formats(cli, make_project) -> None:
    ids = make_runs(cli, make_project, "0.1", "0.5", "0.9")
    listed = json.loads(
        cli(
            "runs", "list", "--filter", "metrics.acc > 0.6", "--order-by", "params.lr", "--json"
        ).stdout
    )
    assert listed["format"] == 1
    assert [r["run_id"] for r in listed["runs"]] == [ids[0], ids[1]]
    assert listed["runs"][0]["params"]["lr"] == "0.1" and listed["runs"][0]["metrics"] == {
        "acc": 0.95
    }
    rows = list(
        csv.DictReader(io.StringIO(cli("runs", "list", "--csv", "--max-results", "1").stdout))
    )
    assert [r["run_id"] for r in rows] == [ids[2]]
    assert rows[0]["params.lr"] == "0.9" and rows[0]["status"] == "FINISHED"
    assert cli("runs", "list", "--status", "FAILED", "--json").stdout.count('"run_id"') == 0


def test_a_malformed_filter_is_one_line(cli, make_project) -> None:
    make_runs(cli, make_project, "0.1")
    result = cli("runs", "list", "--filter", "metrics.acc > 0.5 OR params.lr = '1'")
    assert (result.exit_code, result.stderr) == (
        2,
        "mlrun: error: --filter: expected AND at column 19, found 'OR' (clauses can only be joined with AND)\n",
    )


def test_describe_by_unique_prefix(cli, make_project, tmp_path) -> None:
    [run_id] = make_runs(cli, make_project, "0.25")
    text = cli("runs", "describe", run_id[:6]).stdout
    assert f"run_id: {run_id}\n" in text
    assert "  lr: 0.25\n" in text and "  acc: 0.875\n" in text and "  stage: test\n" in text
    assert "  logs/stdout.log (8 bytes)\n" in text
    assert "  source: project (local)\n" in text
    document = json.loads(cli("runs", "describe", run_id, "--json").stdout)["run"]
    assert document["provenance"]["environment"]["manager"] == "local"
    assert {a["path"] for a in document["artifacts"]} >= {"logs/stdout.log", "provenance/run.json"}
    missing = cli("runs", "describe", "ffffff")
    assert (missing.exit_code, missing.stderr) == (
        2,
        f"mlrun: error: no run with id 'ffffff' in {tmp_path / 'mlruns'}\n",
    )


def test_a_run_whose_experiment_keeps_artifacts_elsewhere_is_described_whole(
    cli, make_project, tmp_path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    assert (
        cli("experiments", "create", "--experiment-name", "x", "-l", str(elsewhere)).exit_code == 0
    )
    make_project(PROJECT)
    for lr in ("0.1", "0.2"):
        result = cli(
            "run", "project", "--no-env", "--experiment-name", "x", "-P", f"lr={lr}", "--json"
        )
        assert result.exit_code == 0, result.stderr
    first, second = (r["run_id"] for r in json.loads(cli("runs", "list", "--json").stdout)["runs"])
    assert (elsewhere / first / "artifacts" / "provenance" / "run.json").is_file()
    text = cli("runs", "describe", first).stdout
    listed = text.split("artifacts:\n")[1].split("provenance:")[0]
    assert "logs/stdout.log" in listed and "provenance/run.json" in listed
    assert "  source: project (local)" in text
    document = json.loads(cli("runs", "describe", first, "--json").stdout)["run"]
    assert {a["path"] for a in document["artifacts"]} >= {"logs/stdout.log", "provenance/run.json"}
    assert document["provenance"]["command"].startswith("python train.py")
    compared = json.loads(cli("runs", "compare", first, second, "--json").stdout)["comparison"]
    assert {d["section"] for d in compared["differences"]} >= {"params", "metrics"}


def test_compare_shows_only_differences(cli, make_project, tmp_path) -> None:
    first, second = make_runs(cli, make_project, "0.1", "0.5")
    (tmp_path / "project" / "data.csv").write_text("x\n2\n")
    third = json.loads(cli("run", "project", "--no-env", "-P", "lr=0.1", "--json").stdout)["run"][
        "run_id"
    ]

    result = cli("runs", "compare", first, second, "--json")
    differences = {
        (d["section"], d["key"]): (d["left"], d["right"])
        for d in json.loads(result.stdout)["comparison"]["differences"]
    }
    assert differences[("params", "lr")] == ("0.1", "0.5")
    assert differences[("metrics", "acc")] == ("0.95", "0.75")
    assert differences[("tags", "mlrun.command")][0].endswith("train.py 0.1")
    assert ("params", "data") not in differences
    data_changed = json.loads(cli("runs", "compare", first, third, "--json").stdout)["comparison"][
        "differences"
    ]
    assert [(d["section"], d["key"]) for d in data_changed] == [("tags", "mlrun.input.data.digest")]
    same = cli("runs", "compare", first, first)
    assert same.stdout == f"runs {first[:8]} and {first[:8]} do not differ\n"


def test_delete_and_restore_follow_mlflow(cli, make_project, tmp_path, monkeypatch) -> None:
    [run_id] = make_runs(cli, make_project, "0.1")
    assert cli("runs", "delete", run_id[:8]).stdout == f"Run {run_id} has been deleted.\n"
    assert cli("runs", "list", "--json").stdout.count('"run_id"') == 0
    assert cli("runs", "list", "--view", "deleted_only", "--json").stdout.count('"run_id"') == 1
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=(tmp_path / "mlruns").as_uri())
    assert client.get_run(run_id).info.lifecycle_stage == "deleted"
    meta = (tmp_path / "mlruns" / "0" / run_id / "meta.yaml").read_text()
    assert "deleted_time: " in meta
    assert (
        cli("runs", "delete", run_id).stderr == f"mlrun: error: run {run_id} is already deleted\n"
    )
    assert cli("runs", "restore", run_id).stdout == f"Run {run_id} has been restored.\n"
    assert client.get_run(run_id).info.lifecycle_stage == "active"
    assert "deleted_time" not in (tmp_path / "mlruns" / "0" / run_id / "meta.yaml").read_text()


def test_gc_marks_runs_whose_runner_died_killed_and_leaves_live_ones(tmp_path) -> None:
    write_files(tmp_path / "project", PROJECT)
    env = child_env()
    dying = subprocess.Popen(
        mlrun_command("run", "project", "-e", "wait", "--no-env"),
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert dying.stdout is not None and dying.stdout.readline() == b"started\n"
    live = subprocess.Popen(
        mlrun_command("run", "project", "-e", "wait", "--no-env"),
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert live.stdout is not None and live.stdout.readline() == b"started\n"
    os.kill(dying.pid, signal.SIGKILL)  # the runner dies without a word; its run stays RUNNING
    dying.wait()
    try:
        done = run_mlrun("runs", "gc", cwd=tmp_path)
        assert done.stdout.endswith("1 stuck run found\n"), done.stdout + done.stderr
        statuses = {
            r["run_id"]: r["status"]
            for r in json.loads(run_mlrun("runs", "list", "--json", cwd=tmp_path).stdout)["runs"]
        }
        assert sorted(statuses.values()) == ["KILLED", "RUNNING"]
        assert run_mlrun("runs", "gc", cwd=tmp_path).stdout == "0 stuck runs found\n"
        orphan, survivor = map(
            int, (tmp_path / "project" / "entry-point-groups").read_text().split()
        )
        deadline = time.monotonic() + 30
        while _alive(orphan) and time.monotonic() < deadline:  # the dead runner's entry point
            time.sleep(0.05)
        assert (_alive(orphan), _alive(survivor)) == (False, True)
    finally:
        live.send_signal(signal.SIGINT)
        live.wait(timeout=30)


def _alive(pid: int) -> bool:
    """Running (a zombie nobody reaped is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_mlflow_runs_are_listed_and_mixed_logging_is_consistent(
    cli, make_project, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=(tmp_path / "mlruns").as_uri())
    [ours] = make_runs(cli, make_project, "0.1")
    client.log_metric(ours, "from_mlflow", 3.0, step=2)
    experiment_id = client.create_experiment("made-by-mlflow")
    theirs = client.create_run(experiment_id, run_name="mlflow-run").info.run_id
    client.log_param(theirs, "alpha", "7")
    client.log_metric(theirs, "score", 0.5)
    client.set_terminated(theirs, "FINISHED")
    runs = {r["run_id"]: r for r in json.loads(cli("runs", "list", "--json").stdout)["runs"]}
    assert runs[theirs]["experiment_name"] == "made-by-mlflow"
    assert (runs[theirs]["params"], runs[theirs]["metrics"], runs[theirs]["status"]) == (
        {"alpha": "7"},
        {"score": 0.5},
        "FINISHED",
    )
    assert runs[ours]["metrics"] == {"acc": 0.95, "from_mlflow": 3.0}
    got = client.get_run(ours)
    assert got.data.params["lr"] == "0.1" and got.data.metrics == {"acc": 0.95, "from_mlflow": 3.0}
    history = client.get_metric_history(ours, "acc")
    assert [(m.step, m.value) for m in history] == [(0, 0.9), (1, 0.95)]
    assert {a.path for a in client.list_artifacts(ours)} >= {"logs", "provenance"}


def test_the_logging_api_outside_a_run_starts_one(tmp_path) -> None:
    script = "import mlrun_log as ml\nml.log_param('p', 1)\nml.log_metric('m', 2.5)\nprint(ml.active_run_id())\n"
    runtime = RUNTIME
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**child_env(), "PYTHONPATH": str(runtime)},
        check=True,
    )
    info, params, tags = FileStore(tmp_path / "mlruns").read_run(done.stdout.strip())
    assert (info.status.name, params, info.end_time is not None) == ("FINISHED", {"p": "1"}, True)
    assert tags["mlflow.source.type"] == "LOCAL"


def test_params_stay_immutable_through_the_logging_api(tmp_path) -> None:
    script = (
        "import mlrun_log as ml\nml.log_param('p', 1)\nml.log_param('p', 1)\nml.log_param('p', 2)\n"
    )
    runtime = RUNTIME
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**child_env(), "PYTHONPATH": str(runtime)},
    )
    assert done.returncode == 1
    assert "param 'p' is already logged with another value" in done.stderr
    [meta] = (tmp_path / "mlruns" / "0").glob("*/meta.yaml")
    assert FileStore(tmp_path / "mlruns").read_run(meta.parent.name)[0].status.name == "FAILED"


@pytest.mark.slow
def test_the_logging_api_works_in_an_env_without_mlrun(tmp_path) -> None:
    write_files(
        tmp_path / "p",
        {
            "python_env.yaml": f"python: '{sys.version_info.major}.{sys.version_info.minor}'\n",
            "main.py": "import mlrun_log as ml, importlib.util\nml.log_metric('x', 1.5)\n"
            "print(importlib.util.find_spec('mlrun_cli') is None, importlib.util.find_spec('yaml') is None)\n",
        },
    )
    done = run_mlrun(
        "run",
        "p",
        "-e",
        "main.py",
        "--json",
        cwd=tmp_path,
        timeout=600,
        MLRUN_ENV_ROOT=str(tmp_path / "envs"),
    )
    assert done.returncode == 0, done.stderr
    assert "True True" in done.stderr  # nothing of mlrun's but mlrun_log is importable there
    run_id = json.loads(done.stdout)["run"]["run_id"]
    assert FileStore(tmp_path / "mlruns").read_run(run_id)[0].status.name == "FINISHED"
    metrics = tmp_path / "mlruns" / "0" / run_id / "metrics" / "x"
    assert metrics.read_text().split()[1:] == ["1.5", "0"]


@pytest.mark.slow
def test_two_thousand_runs_list_like_mlflow(tmp_path) -> None:
    build_store(tmp_path, 2000)
    started = time.monotonic()
    done = run_mlrun(
        "runs",
        "list",
        "--experiment-id",
        "0",
        "--filter",
        "metrics.m > 0.5",
        "--max-results",
        "1000",
        "--json",
        cwd=tmp_path,
    )
    elapsed = time.monotonic() - started
    ours = [r["run_id"] for r in json.loads(done.stdout)["runs"]]
    [theirs] = mlflow_ids(tmp_path, [("metrics.m > 0.5", [], 1000)])
    assert ours == theirs
    assert 800 < len(ours) <= 1000  # ~90% of runs have the metric, about half of them > 0.5

    assert elapsed < 30  # a sanity bound; the speed comparison lives in bench/


def test_the_whole_logging_api_inside_a_run(cli, make_project, tmp_path, monkeypatch) -> None:
    make_project(
        {
            "MLproject": "entry_points:\n  main:\n    command: python log_all.py\n",
            "log_all.py": """
import pathlib, mlrun_log as ml
ml.log_params({"a": 1, "b": "two"})
ml.log_metrics({"x": 0.5, "y": 1.5}, step=4)
ml.set_tags({"t1": "v1", "nested/t2": "v2"})
pathlib.Path("out").mkdir(exist_ok=True)
pathlib.Path("out/one.txt").write_text("1")
pathlib.Path("out/sub").mkdir(exist_ok=True)
pathlib.Path("out/sub/two.txt").write_text("2")
ml.log_artifact("out/one.txt", "single")
ml.log_artifacts("out", "tree")
print(ml.active_run_id())
""",
        }
    )
    result = cli("run", "project", "--no-env", "--json")
    assert result.exit_code == 0, result.stderr
    run_id = json.loads(result.stdout)["run"]["run_id"]
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=(tmp_path / "mlruns").as_uri())
    run = client.get_run(run_id)
    assert {k: run.data.params[k] for k in ("a", "b")} == {"a": "1", "b": "two"}
    assert run.data.metrics == {"x": 0.5, "y": 1.5}
    assert [m.step for m in client.get_metric_history(run_id, "x")] == [4]
    assert (run.data.tags["t1"], run.data.tags["nested/t2"]) == ("v1", "v2")
    assert [a.path for a in client.list_artifacts(run_id, "single")] == ["single/one.txt"]
    assert {a.path for a in client.list_artifacts(run_id, "tree")} == {"tree/one.txt", "tree/sub"}
    assert Path(json.loads(result.stdout)["run"]["logs"]["stdout"]).read_text() == f"{run_id}\n"


def make_stored_runs(root: Path, experiments: list[str]) -> list[str]:
    """Finished runs written straight into a file store: one per experiment name given."""
    store = FileStore(root)
    store.ensure()
    ids = []
    for name in experiments:
        experiment = store.get_or_create_experiment(name)
        run = store.create_run(experiment, f"run-in-{name}", "me", {"mlrun.duration_s": "2.000"})
        store.finish_run(run, RunStatus.FINISHED, run.start_time + 90_000)
        ids.append(run.run_id)
    return ids


def test_runs_list_names_the_experiment_when_it_spans_several(cli, tmp_path) -> None:
    make_stored_runs(tmp_path / "mlruns", ["alpha", "beta"])
    lines = cli("runs", "list").stdout.splitlines()
    assert lines[0].split()[:5] == ["RUN", "ID", "NAME", "EXPERIMENT", "STATUS"]
    assert sorted(line.split()[2] for line in lines[1:]) == ["alpha", "beta"]
    single = cli("runs", "list", "--experiment-name", "alpha").stdout.splitlines()
    assert "EXPERIMENT" not in single[0]


def test_runs_list_shows_the_total_and_the_entry_point_time(cli, tmp_path) -> None:
    make_stored_runs(tmp_path / "mlruns", ["alpha"])
    lines = cli("runs", "list").stdout.splitlines()
    assert lines[1].split()[-2:] == ["1.5m", "2.0s"]


@pytest.mark.parametrize(
    ("filter_string", "lr", "acc"),
    [
        ("params.lr = '0.5'", "0.5", "0.75"),  # two runs alike
        ("metrics.acc < 0.8", "0.5", "0.75"),
        ("params.lr = '0.1'", "0.1", "0.95"),  # one run
        ("metrics.acc > 0.9 and params.lr = '0.1'", "0.1", "0.95"),
    ],
)
def test_runs_list_filter_keeps_the_params_and_metrics_columns(
    cli, make_project, filter_string, lr, acc
) -> None:
    make_runs(cli, make_project, "0.1", "0.5", "0.5")
    plain = cli("runs", "list").stdout.splitlines()[0].split()
    assert plain[-2:] == ["params.lr", "metrics.acc"]
    listed = cli("runs", "list", "--filter", filter_string).stdout.splitlines()
    header = listed[0].split()
    values = header[header.index("POINT") + 1 :]
    assert {"params.lr", "metrics.acc"} <= set(values)
    newest = dict(zip(values, listed[1].split()[-len(values) :], strict=True))
    assert (newest["params.lr"], newest["metrics.acc"]) == (lr, acc)
