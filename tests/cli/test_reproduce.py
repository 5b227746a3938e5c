"""`mlrun reproduce` in-process: code from the commit + recorded diff, same params, data check."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlrun_cli.core.settings import Settings
from mlrun_cli.errors import SourceError
from mlrun_cli.run.reproduce import ReproduceRequest, plan_reproduce
from mlrun_cli.tracking.file_store import FileStore
from tests.gitrepos import commit_all, git, make_repo

PROJECT = {
    "MLproject": """
name: repro
entry_points:
  main:
    parameters:
      data: {type: path, default: data.txt}
      k: {type: float, default: 2}
    command: "python score.py {data} {k}"
""",
    "score.py": """
import sys
import mlrun_log as ml
OFFSET = 100
text = open(sys.argv[1]).read()
ml.log_metric("score", len(text) * float(sys.argv[2]) + OFFSET)
print("score logged")
""",
    "data.txt": "abc\n",
}


def original_run(cli, tmp_path: Path, *args: str) -> str:
    """A run from a dirty tree: the uncommitted OFFSET decides the metric."""
    repo = make_repo(tmp_path / "repo", PROJECT)
    score = repo / "score.py"
    score.write_text(score.read_text().replace("OFFSET = 100", "OFFSET = 7"))
    done = cli("run", "repo", "--no-env", "-P", "k=3", *args, "--json")
    assert done.exit_code == 0, done.stderr
    return json.loads(done.stdout)["run"]["run_id"]


def stored(tmp_path: Path, run_id: str):
    return FileStore(tmp_path / "mlruns").runs_with_prefix(run_id)[0]


def test_a_run_from_a_dirty_tree_is_reproduced_with_the_same_code_and_metrics(
    cli, tmp_path
) -> None:
    run_id = original_run(cli, tmp_path)
    assert stored(tmp_path, run_id).metrics == {"score": 19.0}  # 4 * 3 + 7: the dirty code
    (tmp_path / "repo" / "score.py").write_text("raise SystemExit('edited since')\n")

    done = cli("reproduce", run_id[:10], "--json")
    assert done.exit_code == 0, done.stderr
    result = json.loads(done.stdout)["reproduce"]
    assert result["metrics"] == [
        {"name": "score", "original": 19.0, "reproduced": 19.0, "matches": True}
    ]
    new = stored(tmp_path, result["run_id"])
    original = stored(tmp_path, run_id)
    assert new.tags["mlrun.reproduces"] == run_id
    assert new.tags["mlflow.source.git.commit"] == original.tags["mlflow.source.git.commit"]
    assert new.tags["mlflow.source.git.diff"] == original.tags["mlflow.source.git.diff"]
    assert new.params["k"] == original.params["k"]
    assert new.tags["mlflow.source.name"] == original.tags["mlflow.source.name"]
    checkout = Path(new.params["data"]).parent  # the tree's data, read from the new checkout
    assert checkout.parent.name == "checkouts" and Path(new.params["data"]).name == "data.txt"


def test_the_text_output_puts_metrics_side_by_side(cli, tmp_path) -> None:
    run_id = original_run(cli, tmp_path)
    done = cli("reproduce", run_id)
    assert done.exit_code == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "score logged" in lines
    assert lines[-3].split() == ["metric", "original", "reproduced", "match"]
    assert lines[-2].split() == ["score", "19.0", "19.0", "yes"]
    assert lines[-1].endswith(f"of run {run_id}: reproduced (rtol 1e-06)")


def test_changed_input_data_outside_the_project_is_refused_unless_drift_is_allowed(
    cli, tmp_path
) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("abc\n")
    run_id = original_run(cli, tmp_path, "-P", f"data={outside}")
    outside.write_text("abcdef\n")
    refused = cli("reproduce", run_id)
    assert refused.exit_code == 2
    assert f"input data ({outside}) changed since run {run_id}" in refused.stderr
    assert "--allow-data-drift" in refused.stderr
    assert len(FileStore(tmp_path / "mlruns").stored_runs(["0"])) == 1

    drifted = cli("reproduce", run_id, "--allow-data-drift", "--json")
    assert drifted.exit_code == 1  # it ran, and the metric is not the original's
    metrics = json.loads(drifted.stdout)["reproduce"]["metrics"]
    assert metrics == [{"name": "score", "original": 19.0, "reproduced": 28.0, "matches": False}]
    assert cli("reproduce", run_id, "--allow-data-drift", "--rtol", "0.5").exit_code == 0


def test_dry_run_says_what_would_be_done_and_runs_nothing(cli, tmp_path) -> None:
    run_id = original_run(cli, tmp_path)
    done = cli("reproduce", run_id, "--dry-run")
    assert done.exit_code == 0, done.stderr
    commit = stored(tmp_path, run_id).tags["mlflow.source.git.commit"]
    assert f"code: commit {commit} of {(tmp_path / 'repo').as_uri()}" in done.stdout
    assert "uncommitted changes: " in done.stdout and "diff lines applied" in done.stdout
    assert "param k = 3" in done.stdout
    assert "inputs: unchanged" in done.stdout
    assert len(FileStore(tmp_path / "mlruns").stored_runs(["0"])) == 1


def test_an_unreachable_commit_is_refused(cli, tmp_path) -> None:
    in_git = original_run(cli, tmp_path)
    shutil.rmtree(tmp_path / "repo" / ".git")
    refused = cli("reproduce", in_git)
    assert refused.exit_code == 5
    assert "is not reachable" in refused.stderr


def test_a_run_outside_git_is_reproduced_in_place_while_its_files_are_unchanged(
    cli, make_project, tmp_path
) -> None:
    project = make_project(PROJECT)
    done = cli("run", "project", "--no-env", "-P", "k=3", "--json")
    run_id = json.loads(done.stdout)["run"]["run_id"]
    (project / "__pycache__").mkdir()  # neither bytecode nor the store counts as code
    (project / "__pycache__" / "score.pyc").write_text("")

    dry = cli("reproduce", run_id, "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert f"code: {project} in place, its files unchanged since the run" in dry.stdout
    done = cli("reproduce", run_id, "--json")
    assert done.exit_code == 0, done.stderr
    result = json.loads(done.stdout)["reproduce"]
    assert result["metrics"] == [
        {"name": "score", "original": 112.0, "reproduced": 112.0, "matches": True}
    ]
    new = stored(tmp_path, result["run_id"])
    assert new.params == stored(tmp_path, run_id).params
    assert new.tags["mlrun.reproduces"] == run_id


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (lambda p: (p / "score.py").write_text("OFFSET = 1\n"), "changed score.py"),
        (lambda p: (p / "extra.py").write_text(""), "added extra.py"),
        (lambda p: (p / "score.py").unlink(), "removed score.py"),
        (lambda p: (p / "sub").mkdir() or (p / "sub" / "a.py").write_text(""), "added sub/a.py"),
    ],
)
def test_a_run_outside_git_whose_files_changed_is_refused_naming_them(
    cli, make_project, change, said: str
) -> None:
    project = make_project(PROJECT)
    done = cli("run", "project", "--no-env", "--json")
    run_id = json.loads(done.stdout)["run"]["run_id"]
    change(project)
    refused = cli("reproduce", run_id)
    assert refused.exit_code == 5
    assert f"which is not in git, and its files changed since: {said}" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_a_run_outside_git_recorded_without_its_files_is_refused(
    cli, make_project, tmp_path
) -> None:
    """A record written before file manifests were kept cannot say what the code was."""
    make_project(PROJECT)
    done = cli("run", "project", "--no-env", "--json")
    run_id = json.loads(done.stdout)["run"]["run_id"]
    record = next((tmp_path / "mlruns").glob(f"*/{run_id}/artifacts/provenance/run.json"))
    document = json.loads(record.read_text())
    del document["source"]["content"]
    record.write_text(json.dumps(document))
    refused = cli("reproduce", run_id)
    assert refused.exit_code == 5
    assert "its record has no content digest (recorded by an older mlrun)" in refused.stderr


NAMES = ("a.txt", "b.txt", "sub/c.txt", "sub/d.txt")


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    changed=st.sets(st.sampled_from(NAMES)),
    removed=st.sets(st.sampled_from(NAMES)),
    added=st.sets(st.sampled_from(("new.txt", "sub/new.txt", "deep/er/new.txt"))),
)
def test_what_changed_outside_git_is_named_file_by_file(
    cli, make_project, tmp_path, changed: set[str], removed: set[str], added: set[str]
) -> None:
    project = tmp_path / "project"
    if not project.exists():  # one run for all the examples
        make_project({**PROJECT, **{name: name for name in NAMES}})
        done = cli("run", "project", "--no-env", "--json")
        (tmp_path / "run_id").write_text(json.loads(done.stdout)["run"]["run_id"])
    run_id = (tmp_path / "run_id").read_text()
    changed -= removed
    for name in changed:
        (project / name).write_text("edited")
    for name in removed:
        (project / name).unlink()
    for name in added:
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text("new")
    try:
        settings_ = Settings.resolve(None, cwd=tmp_path, environ=dict(os.environ))
        if not (changed or removed or added):
            assert plan_reproduce(ReproduceRequest(run_id), settings_).commit is None
            return
        with pytest.raises(SourceError) as raised:
            plan_reproduce(ReproduceRequest(run_id), settings_)
        said = str(raised.value).split("changed since: ", 1)[1]
        for kind, names in (("changed", changed), ("added", added), ("removed", removed)):
            part = next((p for p in said.split("; ") if p.startswith(kind + " ")), "")
            assert set(part.removeprefix(kind + " ").split(", ")) - {""} == set(names), said
    finally:
        for name in added:
            (project / name).unlink()
        for name in changed | removed:
            (project / name).write_text(name)


WRITER = {
    "MLproject": """
name: writer
entry_points:
  main:
    parameters:
      data: {type: path, default: data/in.txt}
      out: {type: path, default: models/out.txt, role: output}
    command: "python write.py {data} {out}"
""",
    "write.py": """
import sys
import mlrun_log as ml
text = open(sys.argv[1]).read()
open(sys.argv[2], "w").write(text.upper())
ml.log_metric("chars", len(text))
""",
    "data/in.txt": "abc\n",
    "models/.keep": "",
    ".gitignore": "models/out.txt\nscratch/\n",
}


def writer_repo(tmp_path: Path, sub: str = "") -> Path:
    """The writer project in a git repository (in `sub` of it), tagged v1; its output and
    scratch/ ignored."""
    repo = make_repo(tmp_path / "repo", {f"{sub}/{k}" if sub else k: v for k, v in WRITER.items()})
    git(repo, "tag", "v1")
    return repo


def reproduced(cli, tmp_path: Path, run_id: str, *args: str) -> dict:
    done = cli("reproduce", run_id, "--json", *args)
    assert done.exit_code == 0, done.stderr
    result = json.loads(done.stdout)["reproduce"]
    assert result["metrics"] == [
        {"name": "chars", "original": 4.0, "reproduced": 4.0, "matches": True}
    ]
    return result


@pytest.mark.parametrize("sub", ["", "proj", "a/b"])
def test_a_run_of_a_pruned_checkout_is_reproduced_from_a_fresh_one(cli, tmp_path, sub) -> None:
    repo = writer_repo(tmp_path, sub)
    uri = f"repo#{sub}" if sub else "repo"
    done = cli("run", uri, "--version", "v1", "--no-env", "--json")
    assert done.exit_code == 0, done.stderr
    run_id = json.loads(done.stdout)["run"]["run_id"]
    original = stored(tmp_path, run_id)
    assert "/checkouts/" in original.params["data"]
    pruned = cli("envs", "prune", "--all")
    assert pruned.exit_code == 0 and "1 source checkout" in pruned.stdout, pruned.stdout
    assert not Path(original.params["data"]).exists()

    result = reproduced(cli, tmp_path, run_id)
    new = stored(tmp_path, result["run_id"])
    assert new.tags["mlflow.source.name"] == original.tags["mlflow.source.name"]
    assert repo.as_uri() in new.tags["mlflow.source.name"]
    for name in ("data", "out"):
        moved = Path(new.params[name])
        assert moved.exists() and moved != Path(original.params[name])
        assert moved.parts[-2:] == Path(original.params[name]).parts[-2:]
    assert Path(new.params["out"]).read_text() == "ABC\n"


def test_reproducing_a_working_tree_run_never_touches_the_tree(cli, tmp_path) -> None:
    repo = writer_repo(tmp_path)
    (repo / "scratch").mkdir()  # ignored, so not in the new checkout: made there for the output
    done = cli("run", "repo", "--no-env", "-P", "out=repo/scratch/out.txt", "--json")
    run_id = json.loads(done.stdout)["run"]["run_id"]
    model = repo / "scratch" / "out.txt"
    before = (model.read_bytes(), model.stat().st_mtime_ns)
    (repo / "data" / "in.txt").write_text("edited in the tree since\n")  # git restores it
    dry = cli("reproduce", run_id, "--dry-run")
    assert f"paths inside {repo}, mapped into the new checkout: data, out" in dry.stdout
    assert "inputs inside the project: checked in the new checkout" in dry.stdout

    new = stored(tmp_path, reproduced(cli, tmp_path, run_id)["run_id"])
    assert (model.read_bytes(), model.stat().st_mtime_ns) == before
    assert Path(new.params["out"]).read_text() == "ABC\n"
    assert new.tags["mlflow.source.name"] == stored(tmp_path, run_id).tags["mlflow.source.name"]


def test_an_ignored_input_in_the_tree_is_read_where_it_was_while_unchanged(cli, tmp_path) -> None:
    repo = writer_repo(tmp_path)
    (repo / ".gitignore").write_text("models/\nlocal/\n")
    commit_all(repo, "ignore local data")
    (repo / "local").mkdir()
    (repo / "local" / "in.txt").write_text("xyz\n")
    done = cli("run", "repo", "--no-env", "-P", "data=repo/local/in.txt", "--json")
    run_id = json.loads(done.stdout)["run"]["run_id"]

    new = stored(tmp_path, reproduced(cli, tmp_path, run_id)["run_id"])
    assert new.params["data"] == str(repo / "local" / "in.txt")
    (repo / "local" / "in.txt").write_text("changed\n")
    refused = cli("reproduce", run_id)
    assert refused.exit_code == 2
    assert f"input data ({repo / 'local' / 'in.txt'}) changed since run {run_id}" in (
        refused.stderr
    )
    (repo / "local" / "in.txt").unlink()
    gone = cli("reproduce", run_id)
    assert gone.exit_code == 2
    assert "is neither in commit" in gone.stderr and "Traceback" not in gone.stderr


def test_a_run_outside_git_writes_its_reproduced_outputs_elsewhere(
    cli, make_project, tmp_path
) -> None:
    project = make_project({k: v for k, v in WRITER.items() if k != ".gitignore"})
    done = cli("run", "project", "--no-env", "--json")
    run_id = json.loads(done.stdout)["run"]["run_id"]
    model = project / "models" / "out.txt"
    before = (model.read_bytes(), model.stat().st_mtime_ns)

    new = stored(tmp_path, reproduced(cli, tmp_path, run_id)["run_id"])
    assert (model.read_bytes(), model.stat().st_mtime_ns) == before
    assert new.params["data"] == str(project / "data" / "in.txt")
    assert Path(new.params["out"]).read_text() == "ABC\n"
    assert Path(new.params["out"]).parent != model.parent


@pytest.mark.parametrize("outside", ["repo2/in.txt", "repo-data/in.txt", "in.txt"])
def test_an_input_beside_the_project_stays_where_it_was_recorded(
    cli, tmp_path, outside: str
) -> None:
    """A sibling folder whose name starts like the project's is not inside it."""
    writer_repo(tmp_path)
    data = tmp_path / outside
    data.parent.mkdir(parents=True, exist_ok=True)
    data.write_text("abc\n")
    done = cli("run", "repo", "--version", "v1", "--no-env", "-P", f"data={data}", "--json")
    run_id = json.loads(done.stdout)["run"]["run_id"]
    assert cli("envs", "prune", "--all").exit_code == 0

    new = stored(tmp_path, reproduced(cli, tmp_path, run_id)["run_id"])
    assert new.params["data"] == str(data)
    data.write_text("changed\n")
    refused = cli("reproduce", run_id)
    assert refused.exit_code == 2 and f"input data ({data}) changed" in refused.stderr
