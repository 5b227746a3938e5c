"""`mlrun sweep` in-process: the grid as a parent run and its children, failures, the cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlrun_cli.errors import StoreError
from mlrun_cli.tracking.file_store import FileStore
from tests.gitrepos import git, make_repo

GRID_PROJECT = {
    "MLproject": """
name: grid
entry_points:
  main:
    parameters:
      a: {type: int, default: 1}
      b: {type: string, default: x}
    command: "python score.py {a} {b}"
  read:
    parameters:
      file: path
    command: "python score.py 1 {file}"
""",
    "score.py": """
import sys
import mlrun_log as ml
a, b = int(sys.argv[1]), sys.argv[2]
print(f"score for {a} {b}")
ml.log_metric("score", a * 10 + len(b))
sys.exit(3 if a < 0 else 0)
""",
}


def sweep_json(cli, *args: str) -> tuple[int, dict, str]:
    result = cli("sweep", "project", "--no-env", *args, "--json")
    document = json.loads(result.stdout)
    assert document["format"] == 1
    return result.exit_code, document["sweep"], result.stderr


def all_runs(tmp_path: Path) -> dict[str, tuple]:
    store = FileStore(tmp_path / "mlruns")
    return {r.info.run_id: (r.info, r.params, r.tags, r.metrics) for r in store.stored_runs(["0"])}


def test_a_two_parameter_grid_records_the_cross_product_under_one_parent(
    cli, make_project, tmp_path
) -> None:
    make_project(GRID_PROJECT)
    code, sweep, stderr = sweep_json(
        cli, "-P", "a=1,2", "-P", "b=x,yy", "-j", "2", "--order-by", "metrics.score DESC"
    )
    assert code == 0, stderr
    runs = all_runs(tmp_path)
    parent_id = sweep["parent_run_id"]
    info, params, tags, _ = runs[parent_id]
    assert info.status.name == "FINISHED"
    assert tags["mlrun.sweep"] == "product"
    assert json.loads(params["mlrun.sweep.grid"])["params"] == {"a": "1,2", "b": "x,yy"}
    children = {k: v for k, v in runs.items() if v[2].get("mlflow.parentRunId") == parent_id}
    assert len(children) == 4 and len(runs) == 5
    assert sorted((p["a"], p["b"]) for _, p, _, _ in children.values()) == [
        ("1", "x"), ("1", "yy"), ("2", "x"), ("2", "yy"),
    ]  # fmt: skip
    assert all(i.status.name == "FINISHED" for i, _, _, _ in children.values())
    assert all("mlrun.run_key" in t for _, _, t, _ in children.values())
    scores = [row["metrics"]["score"] for row in sweep["children"]]
    assert scores == [22.0, 21.0, 12.0, 11.0]  # sorted by the metric, as asked
    assert sweep["varying"] == ["a", "b"]


def test_the_table_shows_varying_params_status_and_the_metric_sorted(
    cli, make_project, tmp_path
) -> None:
    make_project(GRID_PROJECT)
    result = cli(
        "sweep", "project", "--no-env", "-P", "a=1,3,2", "-P", "b=x",
        "--metric", "score", "--order-by", "metrics.score",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    table = [line for line in lines if not line.startswith("[")]
    assert table[0].split() == ["#", "run", "a", "status", "duration", "score"]
    assert [line.split()[2] for line in table[1:4]] == ["1", "2", "3"]
    assert [line.split()[-1] for line in table[1:4]] == ["11", "21", "31"]
    assert table[4].startswith("sweep ") and "FINISHED, 3 executed" in table[4]
    # each child's output on the terminal carries its number; its own log has it plain
    assert "[2] score for 3 x" in lines
    store = FileStore(tmp_path / "mlruns")
    child = next(r for r in store.stored_runs(["0"]) if r.params.get("a") == "3")
    assert (store.artifact_dir(child.info) / "logs/stdout.log").read_text() == "score for 3 x\n"


def test_one_failing_point_fails_the_parent_but_the_others_finish(
    cli, make_project, tmp_path
) -> None:
    make_project(GRID_PROJECT)
    code, sweep, _ = sweep_json(cli, "-P", "a=1,-1,2", "-j", "2")
    assert code == 1
    assert sweep["status"] == "FAILED"
    statuses = {row["params"]["a"]: row["status"] for row in sweep["children"]}
    assert statuses == {"1": "FINISHED", "-1": "FAILED", "2": "FINISHED"}
    parent = all_runs(tmp_path)[sweep["parent_run_id"]]
    assert parent[0].status.name == "FAILED"


def test_fail_fast_starts_no_child_after_the_first_failure(cli, make_project, tmp_path) -> None:
    make_project(GRID_PROJECT)
    code, sweep, _ = sweep_json(cli, "-P", "a=-1,1,2", "-j", "1", "--fail-fast")
    assert code == 1
    assert [row["status"] for row in sweep["children"]] == ["FAILED", "NOT_STARTED", "NOT_STARTED"]
    assert len(all_runs(tmp_path)) == 2  # the parent and the one failed child


def test_every_value_is_type_checked_before_anything_is_written(
    cli, make_project, tmp_path
) -> None:
    make_project(GRID_PROJECT)
    result = cli("sweep", "project", "--no-env", "-P", "a=1,two,3,four")
    assert result.exit_code == 2
    assert "point 2 (a=two): parameter 'a' (int): 'two' is not an integer" in result.stderr
    assert "point 4 (a=four)" in result.stderr
    assert not (tmp_path / "mlruns").exists()
    result = cli("sweep", "project", "--no-env", "-P", "a=range(0, 50)", "--max-runs", "10")
    assert result.exit_code == 2
    assert "the grid has 50 points, more than --max-runs 10" in result.stderr
    assert not (tmp_path / "mlruns").exists()


def test_ray_is_refused_and_a_bad_slurm_config_is_refused_before_any_run(
    cli, make_project, tmp_path
) -> None:
    make_project(GRID_PROJECT)
    result = cli("sweep", "project", "--no-env", "-P", "a=1,2", "--backend", "ray")
    assert result.exit_code == 2
    assert "--backend ray: sweeps do not submit ray jobs yet" in result.stderr
    result = cli("sweep", "project", "--no-env", "-P", "a=1,2", "--backend", "slurm")
    assert result.exit_code == 2
    assert "partition" in result.stderr  # the schema's required key, before anything is written
    result = cli("sweep", "project", "--no-env", "-P", "a=1,2", "--backend-config", "{}")
    assert result.exit_code == 2
    assert "--backend-config is for the job backends" in result.stderr
    assert not (tmp_path / "mlruns").exists()


def test_reuse_runs_nothing_again_and_reruns_exactly_the_points_whose_data_changed(
    cli, make_project, tmp_path
) -> None:
    make_project(GRID_PROJECT)
    for name in ("a", "b", "c"):
        (tmp_path / "data").mkdir(exist_ok=True)
        (tmp_path / "data" / f"{name}.csv").write_text(f"{name}\n")
    args = ("-e", "read", "-P", "file=glob(data/*.csv)", "--reuse")
    code, first, _ = sweep_json(cli, *args)
    assert (code, first["executed"]) == (0, 3)
    count = len(all_runs(tmp_path))

    code, again, _ = sweep_json(cli, *args)
    assert (code, again["executed"], again["parent_run_id"]) == (0, 0, None)
    assert len(all_runs(tmp_path)) == count  # nothing new recorded
    first_ids = {row["params"]["file"]: row["run_id"] for row in first["children"]}
    assert {row["params"]["file"]: row["reused_from"] for row in again["children"]} == first_ids

    (tmp_path / "data" / "b.csv").write_text("changed\n")
    code, third, _ = sweep_json(cli, *args)
    assert (code, third["executed"]) == (0, 1)
    rerun = [row for row in third["children"] if row["reused_from"] is None]
    assert [row["params"]["file"] for row in rerun] == ["data/b.csv"]


def test_reuse_record_records_a_run_with_the_earlier_metrics(cli, make_project, tmp_path) -> None:
    make_project(GRID_PROJECT)
    code, first, _ = sweep_json(cli, "-P", "a=4", "--reuse")
    assert code == 0
    code, second, _ = sweep_json(cli, "-P", "a=4", "--reuse=record")
    assert (code, second["executed"]) == (0, 0)
    row = second["children"][0]
    earlier = first["children"][0]["run_id"]
    info, _, tags, metrics = all_runs(tmp_path)[row["run_id"]]
    assert tags["mlrun.reused_from"] == earlier
    assert tags["mlflow.parentRunId"] == second["parent_run_id"]
    assert metrics == {"score": 41.0}
    assert info.status.name == "FINISHED"


def test_run_reuse_prints_the_earlier_run_and_records_nothing(
    cli, make_project, tmp_path, monkeypatch
) -> None:
    make_project(GRID_PROJECT)
    first = cli("run", "project", "--no-env", "-P", "a=5", "--json")
    run_id = json.loads(first.stdout)["run"]["run_id"]
    monkeypatch.setenv("MLRUN_REUSE", "1")
    again = cli("run", "project", "--no-env", "-P", "a=5")
    assert again.exit_code == 0
    assert again.stdout == f"{run_id}\n"
    assert f"identical to FINISHED run {run_id}; not run again" in again.stderr
    assert len(all_runs(tmp_path)) == 1
    other = cli("run", "project", "--no-env", "-P", "a=6")
    assert "score for 6 x" in other.stdout
    assert len(all_runs(tmp_path)) == 2


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        (KeyboardInterrupt, "KILLED", 130),
        (StoreError("the store went away"), "FAILED", StoreError.exit_code),
    ],
)
def test_a_sweep_stopped_between_its_parent_and_its_children_ends_the_parent(
    cli, make_project, tmp_path, monkeypatch, fault, status, code
) -> None:
    """Ctrl-C or a lost store while the reused points are recorded: the parent was created a
    moment before and is ended with the sweep, never left RUNNING."""
    make_project(GRID_PROJECT)
    first, _, stderr = sweep_json(cli, "-P", "a=1,2", "--reuse")
    assert first == 0, stderr

    def stopped(*_args: object) -> None:
        raise fault

    monkeypatch.setattr("mlrun_cli.sweeps.sweep.record_reuse", stopped)
    again = cli("sweep", "project", "--no-env", "-P", "a=1,2,3", "--reuse=record")
    assert again.exit_code == code, again.stderr
    parents = [info for info, _, tags, _ in all_runs(tmp_path).values() if "mlrun.sweep" in tags]
    assert len(parents) == 2
    assert sorted(p.status.name for p in parents) == sorted(["FINISHED", status])
    assert all(info.status.name != "RUNNING" for info, _, _, _ in all_runs(tmp_path).values())


def test_a_sweep_of_a_changed_tree_keeps_the_diff_its_parent_names(cli, tmp_path) -> None:
    """A diff too long for a tag is named by the tag as an artifact: the parent has it, as
    every child does."""
    repo = make_repo(tmp_path / "project", GRID_PROJECT)
    (repo / "notes.txt").write_text("a line of a long change\n" * 600)
    git(repo, "add", "notes.txt")
    code, sweep, stderr = sweep_json(cli, "-P", "a=1,2")
    assert code == 0, stderr
    store = FileStore(tmp_path / "mlruns")
    for run_id in (sweep["parent_run_id"], *(row["run_id"] for row in sweep["children"])):
        run = store.get_run(run_id)
        assert "see the artifact provenance/git.diff" in run.tags["mlflow.source.git.diff"]
        diff = (store.artifact_dir(run.info) / "provenance" / "git.diff").read_text()
        assert "+a line of a long change" in diff
